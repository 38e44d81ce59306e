-- A PO closing gives its lots' serials the actual cost (R16), as it does the lots: serials
-- that had not moved since their PO closed still carried the estimate. (The cost-change
-- records of closings before this version are not reconstructed: the quantity each lot held
-- at its closing is not kept.)
UPDATE serials AS s SET unit_cost = l.act_unit_cost
FROM lots AS l
WHERE s.lot_id = l.lot_id AND l.act_unit_cost IS NOT NULL AND s.unit_cost <> l.act_unit_cost;
