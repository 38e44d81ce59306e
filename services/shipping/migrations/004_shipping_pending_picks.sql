-- An AllocateLine's picks wait with it: the line takes them only once allocation holds them,
-- so a re-allocation allocation refuses leaves the line with the picks of the allocation that
-- stands (as allocation does). NULL: not an allocation, or sent before this column.
ALTER TABLE pending_commands ADD COLUMN picks jsonb;

-- An allocated line's problem now means its newest picks were refused while its allocation
-- stands. Until now a ship refusal's problem stayed on its line, unused, once answered: clear
-- those (not while the shipment is shipping: its refusal is not answered yet).
UPDATE shipment_lines AS l SET problem = NULL
FROM shipments AS s
WHERE l.shipment_id = s.shipment_id AND l.status = 'allocated' AND l.problem IS NOT NULL
    AND s.phase <> 'shipping';
