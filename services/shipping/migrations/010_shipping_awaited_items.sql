-- A request or picks update with scans of an item shipping does not know yet waits for it,
-- first in `queued` (domain.py), publishing nothing: `awaited` holds the LICs it waits for
-- (empty: nothing waits for an item), `awaited_until` when its wait
-- (LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS) is over and it is decided with those lines refused
-- UNKNOWN_ITEM. Such a request waits unread, as {"unread": ...} in `queued`: a process of the
-- version before cannot read that, so its processes stop before this version's start.
ALTER TABLE shipments ADD COLUMN awaited text[] NOT NULL DEFAULT '{}';
ALTER TABLE shipments ADD COLUMN awaited_until timestamptz;
ALTER TABLE shipments ADD CONSTRAINT shipments_awaited_check
    CHECK ((cardinality(awaited) = 0) = (awaited_until IS NULL));
-- Which shipments wait for the items arriving, and which are due: over the waiting ones only.
CREATE INDEX shipments_awaiting ON shipments USING gin (awaited) WHERE awaited_until IS NOT NULL;
CREATE INDEX shipments_awaited_until ON shipments (awaited_until) WHERE awaited_until IS NOT NULL;
