"""The ledger's pure core: facts in, rows out (no I/O, no clock, no pydantic).

- `model`: facts read from `inventory.events` and the rows the ledger keeps;
- `recording`: usage, transaction and COGS rows, lot and serial changes (R7, R10–R15);
- `costing`: purchase-order costs and COGS reconciliation (R16);
- `valuation`: a lot's ordered / purchased / received / accrued / used / current figures (R7);
- `stock`: an item's stock at an office: on hand, available, unallocated (§4, R12).
"""
