"""Kafka security settings reach every client the same way (shared.kafka.kafka_security).

Every consumer is a FastStream subscriber of the broker `make_broker` builds, and it builds its
aiokafka consumers with the broker's consumer builder; the producer and admin clients take
`kafka_client_options`. No TLS broker is needed: the tests read what the clients are given,
down to the aiokafka client a subscriber would construct.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from faststream.kafka import KafkaBroker
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.config import Settings
from shared.kafka import kafka_client_options, kafka_security
from shared.service import make_broker

# A throw-away self-signed CA (EC P-256, CN "lotline test CA"): only loaded, never trusted.
CA_PEM = """-----BEGIN CERTIFICATE-----
MIIBijCCATGgAwIBAgIUUL3X+tl+GO61+Iv+Cn0iizq89IowCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPbG90bGluZSB0ZXN0IENBMCAXDTI2MTEyMjEwNTk0MloYDzIx
MjYxMDI5MTA1OTQyWjAaMRgwFgYDVQQDDA9sb3RsaW5lIHRlc3QgQ0EwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAAQ4uV5Ux9PRRZgfw0IJHzrvmhdCNRFB9HPc3QUQ
fNRAos4ITibaqy3Uljx6nqlguaJZ+AHlYGLU1OgU8Bgkptcgo1MwUTAdBgNVHQ4E
FgQU1SlQnOZElmP5L51iSoe8LdeTXpUwHwYDVR0jBBgwFoAU1SlQnOZElmP5L51i
Soe8LdeTXpUwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiBRHnUU
zKEHwi26BX50mWsEjJrllKbMNGFB2OnI4DjtlQIgMQHZ5D0xgbtucpsFdTcXVd9p
Cc6kOgsV9Y/VqavhNmA=
-----END CERTIFICATE-----
"""
SECURITY_KEYS = (
    "security_protocol",
    "ssl_context",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
)
MECHANISMS = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


@pytest.fixture
def cafile(tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text(CA_PEM)
    return str(path)


def settings(
    protocol: str = "PLAINTEXT",
    mechanism: str | None = None,
    *,
    cafile: str | None = None,
    username: str | None = "svc",
    password: str | None = "s3cret",
) -> Settings:
    values: dict[str, Any] = {
        "KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9093",
        "KAFKA_SECURITY_PROTOCOL": protocol,
        "KAFKA_SASL_MECHANISM": mechanism,
        "KAFKA_SASL_USERNAME": username,
        "KAFKA_SASL_PASSWORD": password,
        "KAFKA_SSL_CAFILE": cafile,
    }
    return Settings(**values)


def consumer_options(broker: KafkaBroker) -> dict[str, Any]:
    """The security arguments every subscriber's aiokafka consumer is built with."""
    keywords = broker.config.builder.keywords
    return {k: keywords[k] for k in SECURITY_KEYS if k in keywords}


def broker_options(broker: KafkaBroker) -> dict[str, Any]:
    """The security arguments of the broker's own connection (its producer)."""
    return {
        k: broker._connection_kwargs[k] for k in SECURITY_KEYS if k in broker._connection_kwargs
    }


def trusts_test_ca(context: Any) -> bool:
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    subjects = [cert["subject"] for cert in context.get_ca_certs()]
    return ((("commonName", "lotline test CA"),),) in subjects


def without_context(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k != "ssl_context"}


def test_plaintext_configures_no_security() -> None:
    s = settings()
    assert kafka_security(s) is None
    assert kafka_client_options(s) == {}
    broker = make_broker(s)
    assert consumer_options(broker) == {} and broker_options(broker) == {}


def test_ssl_consumers_use_tls_with_the_ca_file(cafile: str) -> None:
    s = settings("SSL", cafile=cafile)
    security = kafka_security(s)
    assert type(security) is BaseSecurity and security.use_ssl
    broker = make_broker(s)
    for options in (consumer_options(broker), broker_options(broker), kafka_client_options(s)):
        assert options["security_protocol"] == "SSL"
        assert trusts_test_ca(options["ssl_context"])
        assert "sasl_mechanism" not in options


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_sasl_plaintext_consumers_authenticate(mechanism: str) -> None:
    s = settings("SASL_PLAINTEXT", mechanism)
    assert type(kafka_security(s)) is MECHANISMS[mechanism]
    expected = {
        "security_protocol": "SASL_PLAINTEXT",
        "ssl_context": None,
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "svc",
        "sasl_plain_password": "s3cret",
    }
    broker = make_broker(s)
    assert consumer_options(broker) == expected
    assert broker_options(broker) == expected
    assert kafka_client_options(s) == expected


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_sasl_ssl_consumers_authenticate_over_tls(mechanism: str, cafile: str) -> None:
    s = settings("SASL_SSL", mechanism, cafile=cafile)
    security = kafka_security(s)
    assert type(security) is MECHANISMS[mechanism] and security.use_ssl
    expected = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "svc",
        "sasl_plain_password": "s3cret",
    }
    broker = make_broker(s)
    for options in (consumer_options(broker), broker_options(broker), kafka_client_options(s)):
        assert without_context(options) == expected
        assert trusts_test_ca(options["ssl_context"])


def test_the_mechanism_is_read_case_insensitively() -> None:
    s = settings("SASL_PLAINTEXT", "scram-sha-512")
    assert consumer_options(make_broker(s))["sasl_mechanism"] == "SCRAM-SHA-512"


def test_producer_options_are_faststreams_translation_of_the_consumers_security(
    cafile: str,
) -> None:
    s = settings("SASL_SSL", "SCRAM-SHA-256", cafile=cafile)
    assert without_context(kafka_client_options(s)) == without_context(
        parse_security(kafka_security(s))
    )


@pytest.mark.parametrize(
    ("protocol", "mechanism"),
    [("SASL_SSL", "PLAIN"), ("SASL_SSL", "SCRAM-SHA-512"), ("SSL", None)],
)
async def test_a_subscribers_aiokafka_consumer_gets_tls_and_credentials(
    protocol: str, mechanism: str | None, cafile: str
) -> None:
    """The real aiokafka consumer a subscriber builds (FastStream's builder) accepts the
    settings: before, SASL_SSL + PLAIN raised "`ssl_context` is mandatory" here."""
    broker = make_broker(settings(protocol, mechanism, cafile=cafile))
    consumer: AIOKafkaConsumer = broker.config.builder(group_id="g")
    try:
        client = consumer._client
        assert client._security_protocol == protocol
        assert trusts_test_ca(client._ssl_context)
        if mechanism:
            assert client._sasl_mechanism == mechanism
            assert client._sasl_plain_username == "svc"
            assert client._sasl_plain_password == "s3cret"
    finally:
        await consumer.stop()


@pytest.mark.parametrize(
    ("protocol", "mechanism", "username", "password", "complaint"),
    [
        ("SASL_SSL", None, "svc", "pw", "needs KAFKA_SASL_MECHANISM"),
        ("SASL_PLAINTEXT", "GSSAPI", "svc", "pw", "needs KAFKA_SASL_MECHANISM"),
        ("PLAINTEXT", "PLAIN", "svc", "pw", "needs KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT"),
        ("SSL", "SCRAM-SHA-256", "svc", "pw", "needs KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT"),
        ("SASL_SSL", "PLAIN", "svc", None, "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
        ("SASL_SSL", "PLAIN", None, "pw", "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
    ],
)
def test_settings_that_would_connect_less_securely_than_asked_are_refused(
    protocol: str, mechanism: str | None, username: str | None, password: str | None, complaint: str
) -> None:
    # Refused with the other settings, before any client is built (a command answers it as a
    # setting error, exit 2, not a traceback once things have started).
    with pytest.raises(ValueError, match=complaint):
        settings(protocol, mechanism, username=username, password=password)
