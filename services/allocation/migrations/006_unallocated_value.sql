-- What unallocated stock (R12) cost: removals are costed at its average unit cost, not at the
-- item's estimate, so stock counted in beyond any lot goes out at what it came in at (R10).
-- Rows written before this carry no value; they were removed at the item's estimated cost,
-- so that stays their cost.
ALTER TABLE unallocated ADD COLUMN value numeric;
UPDATE unallocated u SET value = u.quantity * i.est_unit_cost FROM items i WHERE i.lic = u.lic;
UPDATE unallocated SET value = 0 WHERE value IS NULL;
ALTER TABLE unallocated
    ALTER COLUMN value SET NOT NULL,
    ADD CONSTRAINT unallocated_value_not_negative CHECK (value >= 0);
