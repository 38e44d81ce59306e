"""lotline's benchmark: every figure next to this machine's own ceiling, measured in the same run.

`lotline bench [--quick] [--scenarios ceilings,allocation,...] [--out bench/results]` starts the
embedded stack (or uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL), runs the scenarios of issue 6
and writes `latest.json` and `latest.md`. Each scenario runs on fresh topics (a unique prefix) and
a fresh database, and reports how many messages its topics held.

Modules: `run` (command line and orchestration), `infra` (stack, deployments, service processes),
`kafka_io` (clients and observers), `publisher` (the upstream system, a separate process),
`workload` (message builders), `ledger_loader` (the bulk loader of scenario 5), `report`
(JSON and Markdown), `scenarios/` (one module per scenario).
"""
