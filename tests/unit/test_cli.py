"""`lotline` as an operator meets it: bad settings, taken ports, services that die.

Nothing here starts PostgreSQL, a broker or a real service: the pieces `lotline up` would start
are replaced by guards (which fail the test) or by small stand-in processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from shared import cli, stack
from shared.config import Settings


def _must_not_start(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("lotline started a piece of the stack despite the problem")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No lotline variable from the caller's environment; nothing of the stack may start."""
    for field in Settings.model_fields.values():
        if field.alias:
            monkeypatch.delenv(field.alias, raising=False)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("LOTLINE_DATA_DIR", str(data_dir))
    for name in ("start_postgres", "start_broker", "start_services"):
        monkeypatch.setattr(stack, name, _must_not_start)
    return data_dir


@pytest.fixture
def listening() -> Iterator[int]:
    """A port on 127.0.0.1 that something (not lotline) listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _run(
    args: Sequence[str], capsys: pytest.CaptureFixture[str], **env: str
) -> tuple[int, list[str]]:
    """`lotline ARGS` with `env` set: (exit status, stderr lines)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        code = cli.main(list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.splitlines()


# -- bad settings: one line per problem, naming the variable and its value, exit 2 ------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LEDGER_HTTP_PORT", "abc"),
        ("LEDGER_HTTP_PORT", "70000"),
        ("METRICS_PORT", "-1"),
        ("DB_POOL_SIZE", "0"),
        ("KAFKA_MAX_BATCH", "0"),
        ("KAFKA_FETCH_MAX_WAIT_MS", "-5"),
        ("KAFKA_SESSION_TIMEOUT_MS", "0"),
        ("KAFKA_REPLICATION_FACTOR", "0"),
        ("LOTLINE_MAX_SERIAL_SPAN", "0"),
        ("LOTLINE_INBOX_RETENTION_DAYS", "0"),
        ("LOTLINE_ALLOCATION_CACHE_ROWS", "-1"),
        ("LOG_LEVEL", "verbose"),
        ("LOG_FORMAT", "text"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    clean_env: Path, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    code, lines = _run(["health", "ledger"], capsys, **{variable: value})

    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"lotline health: {variable}=")
    assert value in lines[0]


@pytest.mark.parametrize(
    ("args", "variable", "value"),
    [
        (["up"], "LEDGER_HTTP_PORT", "abc"),
        (["migrate"], "LOG_FORMAT", "text"),
        (["topics"], "LOG_LEVEL", "verbose"),
    ],
)
def test_the_audited_bad_settings_get_an_answer_not_a_traceback(
    clean_env: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    variable: str,
    value: str,
) -> None:
    code, lines = _run(args, capsys, **{variable: value})

    assert code == 2
    assert lines == [lines[0]] and f"{variable}='{value}'" in lines[0]


def test_every_bad_setting_is_reported_at_once(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _run(["up"], capsys, LEDGER_HTTP_PORT="abc", DB_POOL_SIZE="0")

    assert code == 2
    assert len(lines) == 2
    assert any("LEDGER_HTTP_PORT='abc'" in line for line in lines)
    assert any("DB_POOL_SIZE='0'" in line for line in lines)


def test_a_heartbeat_not_below_the_session_timeout_is_refused(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _run(
        ["health", "ledger"],
        capsys,
        KAFKA_SESSION_TIMEOUT_MS="3000",
        KAFKA_HEARTBEAT_INTERVAL_MS="3000",
    )

    assert code == 2
    assert len(lines) == 1
    assert "KAFKA_HEARTBEAT_INTERVAL_MS" in lines[0] and "KAFKA_SESSION_TIMEOUT_MS" in lines[0]


@pytest.mark.parametrize("command", [["up"], ["topics"]])
def test_kafka_security_that_cannot_connect_is_a_setting_error_before_anything_starts(
    clean_env: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    code, lines = _run(
        command,
        capsys,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_USERNAME="u",
        KAFKA_SASL_PASSWORD="hunter2",
    )

    assert code == 2
    assert len(lines) == 1 and "needs KAFKA_SASL_MECHANISM" in lines[0], lines
    assert "hunter2" not in lines[0]


def test_good_settings_are_still_accepted(clean_env: Path) -> None:
    settings = Settings(LOG_LEVEL="debug", LEDGER_HTTP_PORT=0, METRICS_PORT=9100)  # type: ignore[call-arg]
    assert settings.log_level == "DEBUG"
    assert Settings(LOG_LEVEL="warn").log_level == "WARNING"  # type: ignore[call-arg]
    assert Settings(LOG_LEVEL="FATAL").log_level == "CRITICAL"  # type: ignore[call-arg]
    assert settings.http_port == 0 and settings.metrics_port == 9100


@pytest.mark.parametrize("command", ["migrate", "up"])
@pytest.mark.parametrize("kind", ["a file", "under a file", "/proc"])
def test_an_unusable_data_dir_is_named(
    clean_env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    kind: str,
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    path = {"a file": afile, "under a file": afile / "sub", "/proc": Path("/proc/lotline-x")}[kind]

    code, lines = _run([command], capsys, LOTLINE_DATA_DIR=str(path))

    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith(f"lotline {command}: LOTLINE_DATA_DIR={path}: ")


# -- lotline up: ports checked before anything starts -----------------------------------------


def test_up_refuses_a_taken_ledger_port_before_starting_anything(
    clean_env: Path, capsys: pytest.CaptureFixture[str], listening: int
) -> None:
    code, lines = _run(["up"], capsys, LEDGER_HTTP_PORT=str(listening))

    assert code == 1
    assert len(lines) == 1
    assert f"LEDGER_HTTP_PORT={listening}" in lines[0]
    assert "already answers" in lines[0]
    assert "lotline is up" not in capsys.readouterr().out


def test_up_refuses_a_taken_broker_port_before_starting_anything(
    clean_env: Path, capsys: pytest.CaptureFixture[str], listening: int
) -> None:
    code, lines = _run(
        ["up", "--broker-port", str(listening)], capsys, LEDGER_HTTP_PORT=str(stack.free_port())
    )

    assert code == 1
    assert len(lines) == 1
    assert f"--broker-port {listening}" in lines[0]


@pytest.mark.parametrize("port", ["0", "70000", "abc"])
def test_up_refuses_a_broker_port_that_is_no_port(
    clean_env: Path, capsys: pytest.CaptureFixture[str], port: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["up", "--broker-port", port])

    assert exit_.value.code == 2
    assert "--broker-port" in capsys.readouterr().err


@pytest.fixture
def second_of_two_taken() -> Iterator[int]:
    """A port whose next one something (not lotline) listens on, itself free."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            port = sock.getsockname()[1]
            if not stack.port_taken("127.0.0.1", port - 1):
                yield port - 1
                return
    raise AssertionError("no free port below a listening one in 100 tries")


def test_up_refuses_a_taken_metrics_port_naming_the_service(
    clean_env: Path, capsys: pytest.CaptureFixture[str], second_of_two_taken: int
) -> None:
    # receiving gets METRICS_PORT (free), shipping METRICS_PORT + 1: taken here.
    base = second_of_two_taken
    code, lines = _run(
        ["up"],
        capsys,
        METRICS_PORT=str(base),
        LEDGER_HTTP_PORT=str(stack.free_port()),
    )

    assert code == 1
    assert len(lines) == 1
    assert f"METRICS_PORT={base}" in lines[0]
    assert "shipping" in lines[0] and str(base + 1) in lines[0]


def test_up_refuses_metrics_ports_past_65535(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _run(
        ["up"], capsys, METRICS_PORT="65535", LEDGER_HTTP_PORT=str(stack.free_port())
    )

    assert code == 2
    assert len(lines) == 1
    assert "METRICS_PORT=65535" in lines[0] and "65536" in lines[0]


def test_up_refuses_metrics_ports_that_overlap_the_read_api(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = stack.free_port()
    code, lines = _run(["up"], capsys, METRICS_PORT=str(api - 2), LEDGER_HTTP_PORT=str(api))

    assert code == 2
    assert len(lines) == 1
    assert f"METRICS_PORT={api - 2}" in lines[0] and "LEDGER_HTTP_PORT" in lines[0]


def test_each_service_gets_its_own_metrics_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_PORT", "9100")  # what every service would otherwise inherit
    settings = Settings(
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9092",  # type: ignore[call-arg]
        DATABASE_URL="postgresql://localhost/lotline",  # type: ignore[call-arg]
        METRICS_PORT=9100,  # type: ignore[call-arg]
    )

    ports = stack.metrics_ports(settings, stack.SERVICES)
    envs = stack.service_envs(settings, stack.SERVICES, ports)

    assert ports == {"receiving": 9100, "shipping": 9101, "allocation": 9102}
    assert {name: env.get("METRICS_PORT") for name, env in envs.items()} == {
        "receiving": "9100",
        "shipping": "9101",
        "allocation": "9102",
        "ledger": None,  # the ledger serves /metrics on its read API
    }
    # The order is fixed: without receiving, shipping still gets METRICS_PORT + 1.
    assert stack.metrics_ports(settings, ["shipping", "allocation"]) == {
        "shipping": 9101,
        "allocation": 9102,
    }


# -- lotline up: "up" once started; a service that dies is reported and fails the run ---------

# A stand-in for `python -m services.<name>`: FAKE_<NAME> is "start,exit,status" (seconds after
# which it logs the start line, seconds after which it exits; -1: never); a fake ledger serves
# /healthz on LEDGER_HTTP_PORT from its start on.
_FAKE_SERVICE = textwrap.dedent(
    """
    import http.server, os, sys, threading, time
    name = sys.argv[-1].removeprefix("services.")
    start, stop, status = (float(x) for x in os.environ["FAKE_" + name.upper()].split(","))
    began = time.monotonic()

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    if start >= 0:
        time.sleep(start)
        if name == "ledger":
            address = ("127.0.0.1", int(os.environ["LEDGER_HTTP_PORT"]))
            server = http.server.HTTPServer(address, Health)
            threading.Thread(target=server.serve_forever, daemon=True).start()
        else:
            print('{"event": "service.started"}', flush=True)
    print("working", flush=True)
    if stop < 0:
        time.sleep(3600)
    time.sleep(max(0.0, stop - (time.monotonic() - began)))
    print(f"{name}: giving up", flush=True)
    sys.exit(int(status))
    """
)


@pytest.fixture
def fake_services(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`lotline up` with the configured broker and database, running stand-in services."""
    started: list[subprocess.Popen[bytes]] = []

    def start_services(
        env: Mapping[str, str],
        names: Sequence[str] = stack.SERVICES,
        *,
        log_dir: Path | None = None,
        envs: Mapping[str, Mapping[str, str]] | None = None,
    ) -> list[subprocess.Popen[bytes]]:
        assert log_dir is not None
        log_dir.mkdir(parents=True, exist_ok=True)
        procs = []
        for name in names:
            with open(log_dir / f"{name}.log", "ab") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-c", _FAKE_SERVICE, f"services.{name}"],
                        env={**(envs[name] if envs else env), **os.environ},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        started.extend(procs)
        return procs

    async def prepare(_settings: Settings, *, fresh_broker: bool) -> list[str]:
        return ["receiving", "shipping"]

    monkeypatch.setattr(stack, "start_services", start_services)
    monkeypatch.setattr(stack, "available_services", lambda names=stack.SERVICES: list(names))
    monkeypatch.setattr(stack, "_prepare", prepare)
    monkeypatch.setattr(stack, "start_postgres", _must_not_start)
    monkeypatch.setattr(stack, "start_broker", _must_not_start)
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _ctrl_c_once_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """`lotline up` gets a Ctrl-C as soon as it is up: it supervises its services (restarting
    any that dies) until one comes."""
    watch = stack._watch

    def watching(*args: Any, **kwargs: Any) -> list[str]:
        os.kill(os.getpid(), signal.SIGINT)
        return watch(*args, **kwargs)

    monkeypatch.setattr(stack, "_watch", watching)


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9",  # type: ignore[call-arg]
        DATABASE_URL="postgresql://localhost/lotline",  # type: ignore[call-arg]
        LOTLINE_DATA_DIR=tmp_path / "data",  # type: ignore[call-arg]
        LEDGER_HTTP_PORT=stack.free_port(),  # type: ignore[call-arg]
        **values,
    )


def test_up_stops_everything_when_a_service_dies_while_starting(
    fake_services: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FAKE_RECEIVING", "0,4,0")
    monkeypatch.setenv("FAKE_SHIPPING", "-1,0,3")  # dies before its start line

    with pytest.raises(stack.StackError) as error:
        stack.up(_settings(tmp_path), names=["receiving", "shipping"])

    message = str(error.value)
    assert "shipping exited with 3 while starting" in message
    assert str(tmp_path / "data" / "logs" / "shipping.log") in message
    out = capsys.readouterr().out
    assert "lotline is up" not in out
    assert "shipping: giving up" in out  # the last lines of its log
    assert all(proc.returncode is not None for proc in fake_services)  # the rest was stopped


def test_up_says_up_only_once_every_service_has_started(
    fake_services: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FAKE_RECEIVING", "0.5,-1,0")
    monkeypatch.setenv("FAKE_SHIPPING", "1.5,-1,0")
    monkeypatch.setenv("FAKE_LEDGER", "1,-1,0")
    _ctrl_c_once_up(monkeypatch)

    problems = stack.up(_settings(tmp_path), names=["receiving", "shipping", "ledger"])

    out = capsys.readouterr().out
    up_at = out.index("lotline is up")
    for name in ("receiving", "shipping", "ledger"):
        assert out.index(f"{name} started") < up_at
    assert problems == []


def test_up_restarts_a_service_that_dies_after_the_start(
    fake_services: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FAKE_RECEIVING", "0,1.5,1")
    monkeypatch.setenv("FAKE_SHIPPING", "0,-1,0")
    watch = stack._watch

    def watching(*args: Any, **kwargs: Any) -> list[str]:
        monkeypatch.setenv("FAKE_RECEIVING", "0,-1,0")  # started again, it runs on

        def ctrl_c_once_restarted() -> None:
            while len(fake_services) < 3:
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=ctrl_c_once_restarted, daemon=True).start()
        return watch(*args, **kwargs)

    monkeypatch.setattr(stack, "_watch", watching)

    problems = stack.up(_settings(tmp_path), names=["receiving", "shipping"])

    log = tmp_path / "data" / "logs" / "receiving.log"
    assert problems == [f"service receiving exited with 1 after the stack was up: see {log}"]
    out = capsys.readouterr().out
    died = out.index(f"!! receiving exited with 1 (log: {log}); restarting in 1 s")
    assert out.index("lotline is up") < died < out.index("receiving restarted (pid ")
    assert all(proc.returncode is not None for proc in fake_services)  # the new one stopped too


def test_up_gives_up_on_a_service_that_never_starts(
    fake_services: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FAKE_RECEIVING", "-1,-1,0")

    with pytest.raises(stack.StackError, match="receiving not started within 1 s"):
        stack.up(_settings(tmp_path), names=["receiving"], ready_timeout=1)

    assert "lotline is up" not in capsys.readouterr().out
    assert all(proc.returncode is not None for proc in fake_services)


def test_lotline_up_exits_1_when_a_service_died(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = "service allocation exited with 1: see .lotline/logs/allocation.log"
    monkeypatch.setattr(stack, "up", lambda *_args, **_kwargs: [problem])

    code, lines = _run(["up"], capsys)

    assert code == 1
    assert lines == [f"lotline up: {problem}"]


def test_up_tells_lotline_send_where_the_running_stack_listens(
    fake_services: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """`lotline send` and `lotline demo` in another terminal find the embedded broker (its port
    is chosen at start-up) in the data dir while the stack runs, and only then."""
    monkeypatch.setenv("FAKE_RECEIVING", "0,-1,0")
    settings = _settings(tmp_path)
    data_dir = tmp_path / "data"
    seen: list[dict[str, Any] | None] = []
    watch = stack._watch

    def watching(*args: Any, **kwargs: Any) -> list[str]:
        seen.append(stack.running_stack(data_dir))
        os.kill(os.getpid(), signal.SIGINT)
        return watch(*args, **kwargs)

    monkeypatch.setattr(stack, "_watch", watching)

    stack.up(settings, names=["receiving"])

    assert seen == [
        {
            "pid": os.getpid(),
            "kafka_bootstrap_servers": "127.0.0.1:9",
            "topic_prefix": "",
            "read_api": f"http://127.0.0.1:{settings.http_port}",
        }
    ]
    assert not (data_dir / stack.STACK_FILE).exists()
    assert stack.running_stack(data_dir) is None


def test_a_second_up_from_the_same_data_dir_is_refused_and_leaves_the_first_alone(
    fake_services: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Two stacks on one LOTLINE_DATA_DIR would share its PostgreSQL and logs, and the second
    one's shutdown stopped the first one's database and removed its `stack.json`. Ports do not
    tell them apart (LEDGER_HTTP_PORT=0, another --broker-port): the folder does."""
    monkeypatch.setenv("FAKE_RECEIVING", "0,-1,0")
    data_dir = tmp_path / "data"
    second: list[BaseException | list[str]] = []
    watch = stack._watch

    def watching(*args: Any, **kwargs: Any) -> list[str]:
        if not second:  # the first stack is up: start another one from its folder
            second.append(RuntimeError("the second up did not return"))
            try:
                second[0] = stack.up(_settings(tmp_path), names=["receiving"])
            except stack.StackError as exc:
                second[0] = exc
            assert stack.running_stack(data_dir) is not None  # the first is still findable
        os.kill(os.getpid(), signal.SIGINT)
        return watch(*args, **kwargs)

    monkeypatch.setattr(stack, "_watch", watching)

    stack.up(_settings(tmp_path), names=["receiving"])

    (refusal,) = second
    assert isinstance(refusal, stack.StackError), refusal
    assert f"another `lotline up` (pid {os.getpid()}) is running from {data_dir}" in str(refusal)
    assert len(fake_services) == 1  # the second started nothing
    # Once the first has stopped, the folder is free again.
    monkeypatch.setattr(stack, "_watch", watch)
    _ctrl_c_once_up(monkeypatch)
    stack.up(_settings(tmp_path), names=["receiving"])
    assert len(fake_services) == 2


def test_up_stops_and_says_so_when_the_embedded_broker_dies(
    fake_services: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The memory-only broker gone, every message and topic is gone with it and no service can
    work: `lotline up` must not sit there as if the stack were up."""
    monkeypatch.setenv("FAKE_RECEIVING", "0,20,0")  # would run on for 20 s
    log = tmp_path / "broker.log"
    broker = subprocess.Popen(
        [sys.executable, "-c", "import time, sys; time.sleep(2); sys.exit(3)"],
        start_new_session=True,
    )
    started = stack.EmbeddedBroker(port=9, process=broker, log_path=log)
    monkeypatch.setattr(stack, "start_broker", lambda *_args, **_kwargs: started)
    settings = _settings(tmp_path).model_copy(update={"kafka_bootstrap_servers": None})

    problems = stack.up(settings, names=["receiving"])

    assert problems == [f"the embedded broker exited with 3: see {log}"]
    out = capsys.readouterr().out
    assert out.index("lotline is up") < out.index("!! the embedded broker exited with 3")
    assert all(proc.returncode is not None for proc in fake_services)  # stopped at once


@pytest.mark.parametrize("command", [["topics"], ["up"]])
def test_a_configured_broker_that_never_answers_is_one_line_not_a_traceback(
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    """`lotline topics` (deploy/'s one-shot) or `lotline up` with a KAFKA_BOOTSTRAP_SERVERS
    that never answers: after the start-up wait, a line naming the broker and exit 1."""
    import functools

    from shared import kafka

    monkeypatch.setattr(
        kafka, "wait_for_broker", functools.partial(kafka.wait_for_broker, timeout=0.5)
    )
    bootstrap = f"127.0.0.1:{stack.free_port()}"  # nothing listens there

    code, lines = _run(
        command,
        capsys,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        DATABASE_URL="postgresql://localhost/lotline",
        LEDGER_HTTP_PORT=str(stack.free_port()),
    )

    assert code == 1
    assert lines[-1].startswith(f"lotline {command[0]}: the broker at {bootstrap} does not answer")


def test_ctrl_c_is_a_clean_stop_even_for_a_service_still_starting(
    fake_services: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A service ended by the SIGTERM `lotline up` sends it (one still importing has no handler
    yet) stopped as asked: Ctrl-C then is no failure, not four lines of 'problems'."""
    import signal

    monkeypatch.setenv("FAKE_RECEIVING", "-1,-1,0")  # never logs its start, no SIGTERM handler

    def ctrl_c(*_args: Any, **_kwargs: Any) -> None:
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(stack, "_await_ready", ctrl_c)

    problems = stack.up(_settings(tmp_path), names=["receiving"])

    assert problems == []
    assert fake_services[0].returncode == -signal.SIGTERM
    assert "SIGINT: stopping" in capsys.readouterr().out
