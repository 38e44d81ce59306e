-- An outbox row the broker refused for good (a record larger than the topic takes, say) is
-- parked with the broker's error instead of blocking every row behind it; parked rows are kept
-- (never purged) for an operator to look at.
ALTER TABLE outbox ADD COLUMN parked text;
