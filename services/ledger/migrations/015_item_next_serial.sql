-- An item's Next Serial (R6) as allocation last published it: set by `ItemUpserted`, moved on
-- by a `StockReceived` that carries one (a receipt that took serials from it), so `/items`
-- shows where the counter stands. Null until the item's next such event: rows written before
-- this version do not know it.
ALTER TABLE items ADD COLUMN next_serial text;
