-- Allocation state: the only writer of items, inventory lots, manufacturer lots, serials and
-- allocations. Rows mirror services/allocation/domain/model.py. Constraints are the backstop
-- that even a zombie consumer cannot get past.

CREATE TABLE items (
    lic           text PRIMARY KEY,
    description   text    NOT NULL,
    uom           text    NOT NULL,
    track_mfr_lot boolean NOT NULL,
    serialized    boolean NOT NULL,
    perishable    boolean NOT NULL,
    next_serial   text,
    est_unit_cost numeric NOT NULL CHECK (est_unit_cost >= 0),
    locked        boolean NOT NULL DEFAULT false
);

CREATE TABLE inventory_lots (
    lot_id       text PRIMARY KEY,
    lic          text    NOT NULL,
    office       text    NOT NULL,
    kind         text    NOT NULL CHECK (kind IN ('purchase', 'production', 'adjustment')),
    reference    text,
    received_on  date    NOT NULL,
    unit_cost    numeric NOT NULL CHECK (unit_cost >= 0),
    received_qty numeric NOT NULL CHECK (received_qty >= 0),
    seq          bigint  NOT NULL,
    on_hand      numeric NOT NULL CHECK (on_hand >= 0),
    allocated    numeric NOT NULL CHECK (allocated >= 0 AND allocated <= on_hand),
    used         numeric NOT NULL,
    status       text    NOT NULL CHECK (status IN ('open', 'closed'))
);
CREATE INDEX inventory_lots_lic ON inventory_lots (lic);

CREATE TABLE mfr_lots (
    lot_id      text    NOT NULL,
    mfr_lot     text    NOT NULL,
    lic         text    NOT NULL,
    expires_on  date,
    initial_qty numeric NOT NULL CHECK (initial_qty >= 0),
    on_hand     numeric NOT NULL CHECK (on_hand >= 0),
    allocated   numeric NOT NULL CHECK (allocated >= 0 AND allocated <= on_hand),
    used        numeric NOT NULL,
    PRIMARY KEY (lot_id, mfr_lot)
);
CREATE INDEX mfr_lots_lic ON mfr_lots (lic);

CREATE TABLE units (
    lic         text    NOT NULL,
    serial      text    NOT NULL,
    lot_id      text    NOT NULL,
    mfr_lot     text,
    position    bigint  NOT NULL,
    status      text    NOT NULL
        CHECK (status IN ('available', 'allocated', 'shipped', 'returned_to_vendor', 'removed')),
    shipment_id text,
    line_no     int,
    customer    text,
    PRIMARY KEY (lic, serial, lot_id),
    -- A serial is held by at most one unit of a LIC while in stock or allocated (R4). Deferred
    -- to commit so that one set-based write may move a serial between lots.
    CONSTRAINT units_one_in_stock EXCLUDE USING btree (lic WITH =, serial WITH =)
        WHERE (status IN ('available', 'allocated')) DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE allocations (
    lic          text    NOT NULL,
    shipment_id  text    NOT NULL,
    line_no      int     NOT NULL,
    office       text    NOT NULL,
    kind         text    NOT NULL,
    counterparty text,
    ship_on      date    NOT NULL,
    quantity     numeric NOT NULL CHECK (quantity > 0),
    picks        jsonb   NOT NULL,
    status       text    NOT NULL CHECK (status IN ('allocated', 'shipped', 'released')),
    explicit     boolean NOT NULL,
    complete     boolean NOT NULL,
    PRIMARY KEY (lic, shipment_id, line_no)
);

CREATE TABLE customer_shipments (
    lic      text    NOT NULL,
    lot_id   text    NOT NULL,
    mfr_lot  text    NOT NULL DEFAULT '',
    customer text    NOT NULL,
    shipped  numeric NOT NULL CHECK (shipped >= 0),
    returned numeric NOT NULL CHECK (returned >= 0 AND returned <= shipped),
    PRIMARY KEY (lic, lot_id, mfr_lot, customer)
);

CREATE TABLE unallocated (
    lic      text    NOT NULL,
    office   text    NOT NULL,
    quantity numeric NOT NULL,
    PRIMARY KEY (lic, office)
);
