-- The outbox and the stored offsets are queues: rows are updated within a second of being
-- written, thousands of times a minute. With the default autovacuum trigger (20 % of the table
-- dead) their dead rows pile up between vacuums, and every relay poll and every fence update
-- walks them. Vacuum them after a fixed number of dead rows instead, without throttling. The
-- offsets' pages keep room so an update stays on its page (HOT: no new index entry); the
-- outbox's cannot use that, since marking a row sent changes its unsent index's predicate.
ALTER TABLE outbox SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0
);
ALTER TABLE consumer_offsets SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 500,
    autovacuum_vacuum_cost_delay = 0,
    fillfactor = 50
);
