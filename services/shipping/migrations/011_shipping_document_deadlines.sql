-- Each document waiting in `queued` may wait for items until LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS
-- after it was read, its own deadline, instead of until the first of the shipment's waiting
-- documents' (010 kept one per shipment, set when the first began waiting and never reset):
-- `queued_until` maps each waiting document's message id to its deadline, set as it joins
-- the queue and kept while it waits. `awaited_until` is now the deadline of the document
-- waiting for items (the first in `queued`), so the periodic job and the waiting gauge read
-- its own. A document queued before (or by a process of the version before, which leaves
-- this column alone) has none: it keeps the shipment's `awaited_until` (010's bound), or,
-- with none set, its deadline runs from when this version first saves it.
ALTER TABLE shipments ADD COLUMN queued_until jsonb NOT NULL DEFAULT '{}';
