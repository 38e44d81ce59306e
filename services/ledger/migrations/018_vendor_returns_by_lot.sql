-- A returns desk reconciling vendor credits reads, on each PO line (`GET /purchase-orders`),
-- what returns to vendor took from its lots (R14). usage_by_lot would read every usage record
-- of those lots (each sale, each serial) to find their few returns, and a page of lines most
-- of the table: returns to vendor get an index of their own, holding only them, so the read
-- follows the number of returns, and no other usage record writes to it. Building it reads the
-- usage table once in one transaction, blocking the ledger's usage writes meanwhile, as 016.
CREATE INDEX usage_vendor_returns_by_lot ON usage (lot_id) WHERE source = 'vendor_return';
