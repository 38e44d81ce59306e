-- The vendor of a purchase lot (StockReceived.vendor), so the backward trace reaches it:
-- a serial or manufacturer lot → its receipt, PO and vendor. Null for production and
-- adjustment lots, and for lots received before events carried a vendor.
ALTER TABLE lots ADD COLUMN vendor text;
