"""Reconciliation: after a randomized workload through the real stack, the services agree.

The four services run as OS processes against a real broker and PostgreSQL (`running`). An
upstream system (`shared.send`) publishes a seeded, randomized workload of every kind of
document in rounds (about 400 documents); a plain-Python model of the rules (DESIGN §5)
predicts every answer and what every lot, manufacturer lot, serial, allocation and office
holds afterwards. Then every answer is the model's, every document got exactly one answer,
allocation agrees with itself, the ledger's tables with allocation's, both with the model, and
the read API with the model. The workload, the model and the checks are in
`tests/fixtures/reconcile.py` (its docstring lists them); `tests/e2e/test_chaos.py` runs the
same while the services are killed.

`LOTLINE_RECON_SEED` and `LOTLINE_RECON_ROUNDS` replay another workload. A failure names the
seed, round and document (`seed S round R doc D`) and prints every document with its answer.
"""

from __future__ import annotations

import os

from tests.fixtures.infra import LotlineEnv
from tests.fixtures.reconcile import check_services, plan, report, send_rounds

SEED = int(os.environ.get("LOTLINE_RECON_SEED", "20261101"))
ROUNDS = int(os.environ.get("LOTLINE_RECON_ROUNDS", "40"))


async def test_services_agree_after_a_randomized_workload(running: LotlineEnv) -> None:
    run = plan(SEED, ROUNDS)
    await send_rounds(running, run)
    report(run, await check_services(running, run))
