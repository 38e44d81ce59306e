-- Shipping's own state (schema `shipping`, applied with search_path set to it).

-- Read model of allocation's ItemUpserted events: tracking flags for R8 and R14 checks.
CREATE TABLE items (
    lic           text PRIMARY KEY,
    track_mfr_lot boolean     NOT NULL,
    serialized    boolean     NOT NULL,
    perishable    boolean     NOT NULL,
    gtin          text,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per outgoing shipment and its lifecycle phase (see services/shipping/domain.py).
CREATE TABLE shipments (
    shipment_id  text PRIMARY KEY,
    office       text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('sale', 'vendor_return')),
    counterparty text,
    reference    text,
    ship_on      date        NOT NULL,
    phase        text        NOT NULL CHECK (phase IN ('allocating', 'allocated',
                     'allocation_failed', 'shipping', 'shipped', 'cancelling', 'cancelled')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Its lines: the newest answer per line, what allocation holds for it, what it took.
CREATE TABLE shipment_lines (
    shipment_id text    NOT NULL REFERENCES shipments (shipment_id) ON DELETE CASCADE,
    line_no     int     NOT NULL,
    lic         text    NOT NULL,
    quantity    numeric NOT NULL CHECK (quantity > 0),
    status      text    NOT NULL CHECK (status IN ('pending', 'allocated', 'failed', 'shipped',
                    'released')),
    awaiting    text,
    held_lic    text,
    complete    boolean NOT NULL DEFAULT false,
    picks       jsonb   NOT NULL,
    movements   jsonb   NOT NULL,
    problem     jsonb,
    PRIMARY KEY (shipment_id, line_no)
);

-- Commands sent to allocation and not answered yet; answers find their shipment here.
CREATE TABLE pending_commands (
    command_id  text PRIMARY KEY,
    shipment_id text NOT NULL REFERENCES shipments (shipment_id) ON DELETE CASCADE,
    action      text NOT NULL CHECK (action IN ('allocate', 'release', 'ship')),
    line_no     int  NOT NULL,
    lic         text NOT NULL
);
CREATE INDEX pending_commands_by_shipment ON pending_commands (shipment_id);
