-- The transaction record of each serial record's last change (R15, §4 `/serials`). Which of a
-- serial's lots it is in now is the record changed last in the order the ledger recorded the
-- changes (that transaction's seq), not by business date: a later record may carry an earlier
-- date (a beginning balance dated at the period's start finding a serial counted out later).
ALTER TABLE serials ADD COLUMN last_txn_id text;
UPDATE serials AS s SET last_txn_id = (
    SELECT t.txn_id FROM transactions AS t
    WHERE t.lic = s.lic AND t.serial = s.serial AND t.lot_id = s.lot_id
    ORDER BY t.seq DESC LIMIT 1
);
