-- Every document is answered on inventory.status. A ship request while the shipment is
-- shipping, or a cancel while it is cancelling, is answered when that phase settles, with its
-- status: `waiting` holds the status ids owed to them (a JSON array, in arrival order).
ALTER TABLE shipments ADD COLUMN waiting jsonb NOT NULL DEFAULT '[]';
