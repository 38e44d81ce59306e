-- A document's answer keeps the warnings it carried (ReceiptPosted.warnings,
-- InventoryAdjusted.warnings): [{"code", "message"}, …], the first 100, the last saying how
-- many more (services/ledger/domain/operations.py), so the dashboard, `/ops/summary` and
-- `GET /documents/{id}` can show a receipt posted with an expired lot as more than a plain
-- ReceiptPosted. Answers recorded before this version keep none: their warnings were not kept.
-- A constant default: adding the column rewrites no row.
ALTER TABLE ops_documents ADD COLUMN warnings jsonb NOT NULL DEFAULT '[]';
