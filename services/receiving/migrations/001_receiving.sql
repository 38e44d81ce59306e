-- Receiving's own state (schema `receiving`, applied with search_path set to it).

-- Read model of allocation's ItemUpserted events: what a receipt line is checked against.
CREATE TABLE items (
    lic           text PRIMARY KEY,
    track_mfr_lot boolean     NOT NULL,
    serialized    boolean     NOT NULL,
    perishable    boolean     NOT NULL,
    next_serial   text,
    gtin          text,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per received document (by its message_id: a corrected document is a new message).
--   rejected: refused at the door (nothing posted) or after allocation refused a line;
--   posting:  its per-line commands are out, waiting for allocation's answers;
--   posted:   every line was received.
CREATE TABLE receipts (
    message_id  text PRIMARY KEY,
    shipment_id text        NOT NULL,
    office      text        NOT NULL,
    source      text        NOT NULL CHECK (source IN ('purchase', 'production', 'customer_return')),
    received_on date        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('posting', 'posted', 'rejected')),
    problems    jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    settled_at  timestamptz
);
CREATE INDEX receipts_by_shipment ON receipts (shipment_id);

-- The lines of a document that was sent to allocation, and what allocation answered.
CREATE TABLE receipt_lines (
    message_id text    NOT NULL REFERENCES receipts (message_id),
    line_no    int     NOT NULL,
    lic        text    NOT NULL,
    quantity   numeric NOT NULL CHECK (quantity > 0),
    command_id text    NOT NULL UNIQUE,
    status     text    NOT NULL CHECK (status IN ('pending', 'posted', 'refused')),
    posted     jsonb,
    problem    jsonb,
    PRIMARY KEY (message_id, line_no)
);
CREATE INDEX receipt_lines_waiting ON receipt_lines (message_id) WHERE status = 'pending';
