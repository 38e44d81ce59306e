-- What the stock in no lot (R12) cost: a count in beyond any lot brings units at its unit cost
-- (negative usage), a removal takes them out at their average cost, the last at exactly the
-- value left (allocation's `UnallocatedStock`), and each is a lot-less usage record. `GET
-- /items` shows it beside the lots' value, so an item's stock value is all of its stock's.
-- Filled once from those records: − their total cost per item and office, read through
-- usage_by_lic for the items holding such stock only.
ALTER TABLE unallocated ADD COLUMN value numeric NOT NULL DEFAULT 0;
UPDATE unallocated AS a
SET value = coalesce((
    SELECT -sum(u.total_cost) FROM usage AS u
    WHERE u.lic = a.lic AND u.office = a.office AND u.lot_id IS NULL
), 0);
