-- Shipments and their lines are updated in place (only what changed) rather than deleted and
-- inserted again: leave room on each page so an update can stay on its page (a HOT update, no
-- new primary key entry). Applies to pages written from now on.
ALTER TABLE shipments SET (fillfactor = 80);
ALTER TABLE shipment_lines SET (fillfactor = 70);
COMMENT ON COLUMN shipments.updated_at IS 'when the header or phase last changed';
