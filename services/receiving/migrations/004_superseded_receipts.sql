-- A held document is answered at once, 'superseded', when a newer version of it (another
-- message with the same shipment_id) arrives: its refusal then precedes the newer version's
-- answer, and at most one version of a document is held at a time.
ALTER TABLE held_receipts DROP CONSTRAINT held_receipts_status_check;
ALTER TABLE held_receipts ADD CONSTRAINT held_receipts_status_check
    CHECK (status IN ('held', 'released', 'expired', 'superseded'));

-- Every batch of receipts looks for held versions of its documents.
CREATE INDEX held_receipts_by_shipment ON held_receipts (shipment_id) WHERE status = 'held';
