-- A document of several lines is received whole or not at all: its lines are sent with `hold`,
-- and allocation holds each line it accepts (LineHeld) until receiving confirms or cancels it.
--   held:      accepted and held by allocation; the document waits for its other lines;
--   confirmed: every line was held and ConfirmHeld is sent: waiting for the line's
--              StockReceived / StockReturned (not 'pending', so a LineHeld delivered again
--              cannot hold it a second time);
--   cancelled: another line was refused and CancelHeld is sent: nothing of it was posted.
ALTER TABLE receipt_lines DROP CONSTRAINT receipt_lines_status_check;
ALTER TABLE receipt_lines ADD CONSTRAINT receipt_lines_status_check
    CHECK (status IN ('pending', 'held', 'confirmed', 'posted', 'refused', 'cancelled'));

-- A confirmed line waits for an answer as a pending one does.
DROP INDEX receipt_lines_waiting;
CREATE INDEX receipt_lines_waiting ON receipt_lines (message_id)
    WHERE status IN ('pending', 'confirmed');
