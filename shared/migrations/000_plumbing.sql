-- Plumbing every service schema has: inbox, stored consumer offsets with fencing epochs, outbox.
-- Applied with search_path set to the service's own schema.

-- Processed message ids (the inbox), written in the same transaction as the state change.
CREATE TABLE inbox (
    consumer     text        NOT NULL,
    message_id   text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

-- The consumed position of every partition, committed with the state it produced. The epoch is
-- bumped on every assignment; a transaction from an older epoch (a zombie) matches no row.
CREATE TABLE consumer_offsets (
    consumer    text   NOT NULL,
    topic       text   NOT NULL,
    partition   int    NOT NULL,
    next_offset bigint,
    epoch       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (consumer, topic, partition)
);

-- Events decided in a transaction, published afterwards by the relay (at least once).
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    topic         text        NOT NULL,
    key           bytea,
    payload       bytea       NOT NULL,
    headers       jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    claimed_until timestamptz,
    sent_at       timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
