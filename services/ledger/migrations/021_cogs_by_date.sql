-- A controller closing a month asks for the period's cost of goods sold (`GET /cogs?from=&to=`):
-- every COGS entry dated in it (`entered_on`: a usage's date, a reconciliation's the later of
-- its close and its usage), summed by item. cogs_by_lot and cogs_by_usage would read the whole
-- table: the entries get an index by date, then item (for `lic=`), carrying the columns the
-- sums read so the period is read from the index alone, its size, not the table's. Returns to
-- vendor book no COGS entry (R14, migration 003): their usage records, shown beside COGS, get
-- a partial index of the same shape holding only them, so no other usage record writes to it.
-- Both tables are large: building these reads each once in one transaction, blocking the
-- ledger's writes to them (it records no events meanwhile) while it runs, as 016 (README,
-- Upgrades).
CREATE INDEX cogs_by_date ON cogs (entered_on, lic) INCLUDE (kind, source, quantity, amount);
CREATE INDEX usage_vendor_returns_by_date ON usage (used_on, lic) INCLUDE (quantity, total_cost)
    WHERE source = 'vendor_return';
