-- A newer version of a purchase or production receipt (same shipment_id, another message) that
-- arrives while an earlier version is still being posted is held until that one is answered:
-- sent at once, its lines would reach allocation while the earlier version's lines are held
-- there and be refused as received before, even when the earlier version is then refused.
--   after_message: the earlier version it waits for (its `receipts` row 'posting').
-- Such a document may wait for no unknown item. Processes older than this migration never
-- release it by its earlier version's answer: it waits out its deadline, then is sent as before.
ALTER TABLE held_receipts ADD COLUMN after_message text;
ALTER TABLE held_receipts DROP CONSTRAINT held_receipts_awaited_check;
ALTER TABLE held_receipts ADD CONSTRAINT held_receipts_waits_check
    CHECK (cardinality(awaited) > 0 OR after_message IS NOT NULL);
CREATE INDEX held_receipts_after ON held_receipts (after_message) WHERE status = 'held';
