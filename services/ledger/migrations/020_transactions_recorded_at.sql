-- When the ledger recorded each transaction record: a document's business date (`occurred_on`)
-- may come before or after the decisions around it (a back-dated sale, a return dated before
-- the sale it reverses), and a trace sorted by date alone then reads like a violation. The
-- trace shows this and `seq` (the order recorded), so an auditor can rebuild what happened when.
-- Records written before this version have none (NULL): the time was not kept. Adding a
-- nullable column, then its default, rewrites no row.
ALTER TABLE transactions ADD COLUMN recorded_at timestamptz;
ALTER TABLE transactions ALTER COLUMN recorded_at SET DEFAULT now();
