-- Receipts held because lines name items receiving does not know yet: a new item's
-- ItemUpserted usually reaches receiving three hops after its first receipt. A held document
-- has no `receipts` row yet; it is settled exactly once, then checked in full and recorded there:
--   held:     waiting for the LICs in `awaited` (every one of them unknown when it was held);
--   released: the last awaited item arrived (settled by the transaction that stored it);
--   expired:  the deadline passed first (settled by receiving's periodic job).
-- Whoever settles a document locks its row and moves it out of 'held' in one transaction.
CREATE TABLE held_receipts (
    message_id  text        PRIMARY KEY,
    shipment_id text        NOT NULL,
    -- The ShipmentReceived as JSON text (jsonb refuses the \u0000 a scan may carry); kept only
    -- while held.
    document    text,
    awaited     text[]      NOT NULL CHECK (cardinality(awaited) > 0),
    status      text        NOT NULL DEFAULT 'held'
                            CHECK (status IN ('held', 'released', 'expired')),
    held_at     timestamptz NOT NULL DEFAULT now(),
    deadline    timestamptz NOT NULL,
    settled_at  timestamptz,
    CHECK ((status = 'held') = (document IS NOT NULL))
);
-- Which held documents wait for these LICs (`awaited && $1`), and which are due: both over the
-- held documents only, so settled history does not slow them down.
CREATE INDEX held_receipts_awaiting ON held_receipts USING gin (awaited) WHERE status = 'held';
CREATE INDEX held_receipts_due ON held_receipts (deadline) WHERE status = 'held';
