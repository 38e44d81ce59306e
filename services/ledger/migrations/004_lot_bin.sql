-- The bin a receipt line put its stock away in (StockReceived.bin), shown with the lot.
-- Null for lines that named none, for beginning balances, and for lots received before
-- events carried a bin.
ALTER TABLE lots ADD COLUMN bin text;
