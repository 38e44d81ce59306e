-- What the operations dashboard (`GET /dashboard`, `GET /ops/summary`) shows, recorded from
-- the messages the ledger reads: document answers (inventory.status), refusals (those answers
-- and the CommandRejected of adjustments and items on inventory.events) and dead letters
-- (inventory.dlq). Bounded: the ledger's prune job keeps the latest rows only (see
-- services/ledger/operations.py).

-- Each document's latest answer: one row per receipt or shipment.
CREATE TABLE ops_documents (
    kind        text        NOT NULL,  -- 'receipt' | 'shipment'
    document    text        NOT NULL,
    status      text        NOT NULL,  -- the answer's message type, e.g. ShipmentAllocated
    reason_code text,
    message_id  text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, document)
);
CREATE INDEX ops_documents_by_time ON ops_documents (occurred_at);

-- One row per refusal problem (a refused document lists a few of its problems).
CREATE TABLE ops_refusals (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  text        NOT NULL,
    problem_no  int         NOT NULL,
    type        text        NOT NULL,
    document    text,                  -- shipment id, adjustment id, or the LIC of an item
    lic         text,
    line_no     int,
    reason_code text        NOT NULL,
    reason      text        NOT NULL,
    offending   text,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (message_id, problem_no)
);
CREATE INDEX ops_refusals_by_time ON ops_refusals (occurred_at);

-- Records seen on inventory.dlq: their headers and a short, escaped preview of their bytes.
CREATE TABLE ops_dead_letters (
    seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notice_key       text        NOT NULL UNIQUE,
    dlq_partition    int         NOT NULL,
    dlq_offset       bigint      NOT NULL,
    dead_at          timestamptz NOT NULL,
    error            text,
    source_topic     text,
    source_partition text,
    source_offset    text,
    consumer         text,
    answered         text,
    headers          jsonb       NOT NULL,
    record_key       text,
    payload_bytes    bigint      NOT NULL,
    preview          text        NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);

-- The last event recorded per partition of inventory.events (one row each: every ledger
-- process writes only the partitions it owns), for the dashboard's lag.
CREATE TABLE ops_progress (
    topic           text        NOT NULL,
    partition       int         NOT NULL,
    message_id      text        NOT NULL,
    event_type      text        NOT NULL,
    lic             text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- Usage recorded today and lots expiring soon, read every few seconds: a BRIN index costs the
-- usage inserts next to nothing (rows arrive in about date order); the expiry index is written
-- once per received manufacturer lot (its updates do not touch it).
CREATE INDEX usage_by_used_on ON usage USING brin (used_on);
CREATE INDEX mfr_lots_by_expiry ON mfr_lots (expires_on) WHERE expires_on IS NOT NULL;
