-- A ShipmentRequested that comes while the shipment is being cancelled waits for the cancel to
-- settle, so it is decided as if read just after it (the cancel answered ShipmentCancelled,
-- then the request applied), in whichever batch it was read: `queued` holds it, its lines'
-- picks already read (a JSON object; NULL: nothing waits).
ALTER TABLE shipments ADD COLUMN queued jsonb;
