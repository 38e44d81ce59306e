-- Which of a PO line's lots came first decides their shares of its ordered and purchased
-- quantities (R7) and the order a PO close walks them in (R16). `recorded_at` is when the
-- recording transaction began, the same for every lot one batch records: two receipts of a line
-- dated the same day and recorded together fell back to their document names, not their
-- arrival. A number in recording order breaks that tie; lots recorded before have none (they
-- keep the order they had).
CREATE SEQUENCE lots_recorded_seq;
ALTER TABLE lots ADD COLUMN recorded_seq bigint;
ALTER TABLE lots ALTER COLUMN recorded_seq SET DEFAULT nextval('lots_recorded_seq');
ALTER SEQUENCE lots_recorded_seq OWNED BY lots.recorded_seq;
