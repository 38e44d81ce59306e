-- The inbox only has to remember a message id as long as the message can come back (the
-- topics' retention, an upstream's retries); the relay leader purges older rows. A BRIN index
-- finds them for almost no cost on the hot path (rows arrive in processed_at order).
CREATE INDEX inbox_processed_at ON inbox USING brin (processed_at);
