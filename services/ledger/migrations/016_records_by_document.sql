-- A shipping clerk asks by document ("what did we ship on SO-7001?"): `GET /documents/{document}`
-- lists every transaction record naming the document (a shipment, a receipt, an adjustment, a
-- customer return, a quarantine, a PO's cost changes), across its items, oldest first as
-- `/trace` lists records (business date, then recording order), and `GET /usage?document=` its
-- usage records the same way (by the date used, then as recorded). Each reads its index in the
-- order it lists, so a page of a 100,000-serial shipment is read, not sorted, and a document's
-- records are found without reading the table. Both tables are large: building these blocks
-- the ledger's writes to them while it runs (README, Upgrades).
CREATE INDEX transactions_by_document ON transactions (document, occurred_on, seq);
CREATE INDEX usage_by_document ON usage (document, used_on, seq);
