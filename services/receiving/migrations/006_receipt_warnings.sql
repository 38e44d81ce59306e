-- What a posted receipt's clerk should hear at once (a perishable manufacturer lot already
-- expired on the day it is received): found when the document is checked, kept until its
-- lines are answered, then said with its ReceiptPosted (`warnings`).
--   warnings: a JSON array of the document's warnings; NULL: none (or recorded by a process
--   older than this migration, whose receipts are posted without them).
ALTER TABLE receipts ADD COLUMN warnings jsonb;
