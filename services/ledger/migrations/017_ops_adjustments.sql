-- The dashboard's documents include adjustments, and a refusal knows the document it refused
-- (services/ledger/operations.py). An adjustment posted (InventoryAdjusted) is a document of
-- kind 'adjustment', keyed by its adjustment id, with the item, the adjustment's kind and its
-- signed quantity (null for receipts and shipments, which may span items). A refusal's
-- document_kind ('receipt' | 'shipment' | 'adjustment', null for an item's or a quarantine's)
-- joins it to that document's row: a refusal the document's posting answered after it is
-- shown superseded, not as an open problem.
ALTER TABLE ops_documents
    ADD COLUMN lic             text,
    ADD COLUMN adjustment_kind text,
    ADD COLUMN quantity        numeric;

ALTER TABLE ops_refusals ADD COLUMN document_kind text;
-- The refusals kept so far, by the type they were shown as. An adjustment refused naming no
-- adjustment id was shown under its LIC: it names no adjustment.
UPDATE ops_refusals SET document_kind = CASE
    WHEN type LIKE 'Receipt%' THEN 'receipt'
    WHEN type LIKE 'Shipment%' THEN 'shipment'
    WHEN type = 'CommandRejected:AdjustStock' AND document IS DISTINCT FROM lic THEN 'adjustment'
END;
