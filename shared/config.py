"""Settings from standard environment variables. Unset broker/database means the embedded stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.contracts.topics import LIC_PARTITIONS, Topics

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
DSN_SCHEMES = ("postgresql", "postgres")
# SASL mechanisms lotline connects with (shared.kafka maps each to its client settings).
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str | None = Field(default=None, alias="KAFKA_BOOTSTRAP_SERVERS")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", alias="KAFKA_SECURITY_PROTOCOL"
    )
    kafka_sasl_mechanism: str | None = Field(default=None, alias="KAFKA_SASL_MECHANISM")
    kafka_sasl_username: str | None = Field(default=None, alias="KAFKA_SASL_USERNAME")
    kafka_sasl_password: str | None = Field(default=None, alias="KAFKA_SASL_PASSWORD")
    kafka_ssl_cafile: str | None = Field(default=None, alias="KAFKA_SSL_CAFILE")
    kafka_fetch_max_wait_ms: int = Field(default=20, alias="KAFKA_FETCH_MAX_WAIT_MS", ge=0)
    # After a second without records a consumer fetches this often instead (shared.kafka.IdlePace);
    # at most KAFKA_FETCH_MAX_WAIT_MS: no slowing down.
    kafka_idle_fetch_max_wait_ms: int = Field(
        default=100, alias="KAFKA_IDLE_FETCH_MAX_WAIT_MS", ge=0
    )
    kafka_max_batch: int = Field(default=500, alias="KAFKA_MAX_BATCH", ge=1)
    # The embedded broker completes a group's first join after half the session timeout.
    kafka_session_timeout_ms: int = Field(default=6000, alias="KAFKA_SESSION_TIMEOUT_MS", ge=1)
    kafka_heartbeat_interval_ms: int = Field(
        default=1000, alias="KAFKA_HEARTBEAT_INTERVAL_MS", ge=1
    )
    kafka_replication_factor: int = Field(default=1, alias="KAFKA_REPLICATION_FACTOR", ge=1)
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    db_pool_size: int = Field(default=4, alias="DB_POOL_SIZE", ge=1)
    # The ledger's read API has connections of its own: requests and consumers never wait for
    # each other's.
    api_pool_size: int = Field(default=4, alias="LEDGER_API_POOL_SIZE", ge=1)
    topic_prefix: str = Field(default="", alias="LOTLINE_TOPIC_PREFIX")
    # Partitions of inventory.commands and inventory.events when lotline creates them: at most
    # this many allocation processes share the work.
    lic_partitions: int = Field(default=LIC_PARTITIONS, alias="LOTLINE_LIC_PARTITIONS", ge=1)
    data_dir: Path = Field(default=Path(".lotline"), alias="LOTLINE_DATA_DIR")
    http_host: str = Field(default="127.0.0.1", alias="LEDGER_HTTP_HOST")
    http_port: int = Field(default=8080, alias="LEDGER_HTTP_PORT", ge=0, le=65535)
    # receiving, shipping and allocation serve /metrics here, on LEDGER_HTTP_HOST (`lotline up`
    # gives them this port, +1 and +2); unset or 0: no metrics server.
    metrics_port: int | None = Field(default=None, alias="METRICS_PORT", ge=0, le=65535)
    log_level: LogLevel = Field(default="INFO", alias="LOG_LEVEL")
    log_format: Literal["json", "console"] = Field(default="json", alias="LOG_FORMAT")
    max_serial_span: int = Field(default=1_000_000, alias="LOTLINE_MAX_SERIAL_SPAN", ge=1)
    # How long a consumer remembers a processed message id: longer than any redelivery (the
    # topics' retention, an upstream's retries).
    inbox_retention_days: float = Field(default=30, alias="LOTLINE_INBOX_RETENTION_DAYS", gt=0)
    # Rows of committed LIC state allocation keeps in memory between batches (0: none).
    allocation_cache_rows: int = Field(default=300_000, alias="LOTLINE_ALLOCATION_CACHE_ROWS", ge=0)
    # How long receiving holds a receipt, and allocation's intake an adjustment, naming items
    # they do not know yet (an item's UpsertItem comes on another topic, unordered with them)
    # before refusing it UNKNOWN_ITEM; 0: at once.
    unknown_item_wait_seconds: float = Field(
        default=30, alias="LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS", ge=0
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_name(cls, value: Any) -> Any:
        """`debug`, `WARN` and `FATAL` are accepted as `DEBUG`, `WARNING` and `CRITICAL`."""
        if not isinstance(value, str):
            return value
        name = value.strip().upper()
        name = {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(name, name)
        if name not in get_args(LogLevel):
            raise ValueError(f"not a log level; one of {', '.join(get_args(LogLevel))}")
        return name

    @field_validator("kafka_sasl_mechanism", mode="after")
    @classmethod
    def _mechanism_name(cls, value: str | None) -> str | None:
        return (value.strip().upper() or None) if value is not None else None

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _readable_bootstrap(cls, servers: str | None) -> str | None:
        """Addresses no Kafka client can read (a port that is no number) are refused here,
        before anything connects: the clients would fail deep inside with a bare ValueError."""
        from aiokafka.conn import collect_hosts

        if not servers:
            return servers
        try:
            hosts = collect_hosts(servers)
        except ValueError:
            hosts = []
        if not hosts or not all(host and 1 <= port <= 65535 for host, port, _ in hosts):
            raise ValueError(
                "not a list of HOST:PORT (comma separated, port 1..65535), e.g."
                " kafka-1:9092,kafka-2:9092"
            )
        return servers

    @field_validator("database_url")
    @classmethod
    def _postgresql_url(cls, dsn: str | None) -> str | None:
        if dsn and dsn.partition("://")[0] not in DSN_SCHEMES:
            raise ValueError(
                "not a PostgreSQL URL; the form is postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
            )
        return dsn

    @model_validator(mode="after")
    def _security_that_connects(self) -> Settings:
        """Kafka security settings that cannot connect as asked are refused with the other
        settings, before anything starts, never with less security than asked for."""
        protocol, mechanism = self.kafka_security_protocol, self.kafka_sasl_mechanism
        if protocol in ("PLAINTEXT", "SSL"):
            if mechanism:
                raise ValueError(
                    f"KAFKA_SASL_MECHANISM={mechanism} needs KAFKA_SECURITY_PROTOCOL="
                    f"SASL_PLAINTEXT or SASL_SSL (it is {protocol})"
                )
        elif mechanism not in SASL_MECHANISMS:
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_MECHANISM set to one of "
                f"{', '.join(SASL_MECHANISMS)} (it is {mechanism!r})"
            )
        elif self.kafka_sasl_username is None or self.kafka_sasl_password is None:
            raise ValueError(
                f"KAFKA_SASL_MECHANISM={mechanism} needs KAFKA_SASL_USERNAME and"
                " KAFKA_SASL_PASSWORD"
            )
        if self.kafka_ssl_cafile is not None and not Path(self.kafka_ssl_cafile).is_file():
            raise ValueError(f"KAFKA_SSL_CAFILE={self.kafka_ssl_cafile}: no such file")
        return self

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> Settings:
        if self.kafka_heartbeat_interval_ms >= self.kafka_session_timeout_ms:
            raise ValueError(
                f"KAFKA_HEARTBEAT_INTERVAL_MS ({self.kafka_heartbeat_interval_ms}) must be below"
                f" KAFKA_SESSION_TIMEOUT_MS ({self.kafka_session_timeout_ms})"
            )
        return self

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    def require_bootstrap(self) -> str:
        if not self.kafka_bootstrap_servers:
            raise RuntimeError("KAFKA_BOOTSTRAP_SERVERS is not set (start the stack: lotline up)")
        return self.kafka_bootstrap_servers

    def require_database(self) -> str:
        if not self.database_url:
            raise RuntimeError("DATABASE_URL is not set (start the stack: lotline up)")
        return self.database_url


def from_env() -> Settings:
    return Settings()


def setting_problems(exc: ValidationError) -> list[str]:
    """One line per invalid setting: `VARIABLE='value': what is wrong` (passwords hidden)."""
    from shared.db import redact_dsn

    lines = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a rule across settings: its message names them
            lines.append(message)
            continue
        name = ".".join(str(part) for part in error["loc"])
        value = error.get("input")
        if "PASSWORD" in name.upper():
            value = "***"
        elif name == "DATABASE_URL" and isinstance(value, str):
            value = redact_dsn(value)
        lines.append(
            f"{name}={value!r}: {message}"
            if isinstance(value, str)
            else f"{name}={value}: {message}"
        )
    return lines
