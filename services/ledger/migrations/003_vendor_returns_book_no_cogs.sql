-- A return to vendor is a credit against purchases, not a cost of goods sold: its usage record
-- stays (the stock left, R14, R15) but it books no COGS entry and a PO closing does not
-- reconcile it. Entries written before that rule are removed so lot COGS totals agree with it.
DELETE FROM cogs WHERE source = 'vendor_return';
