-- The ledger's own tables (schema "ledger"): what inventory.events and inventory.costs recorded.
-- Quantities and money are exact numerics. No CHECK constraint mirrors allocation's rules: the
-- ledger records what allocation decided, and a refused write would stall the partition.

-- Items as allocation last accepted them (ItemUpserted).
CREATE TABLE items (
    lic           text PRIMARY KEY,
    description   text    NOT NULL DEFAULT '',
    uom           text    NOT NULL DEFAULT 'Each',
    track_mfr_lot boolean NOT NULL,
    serialized    boolean NOT NULL,
    perishable    boolean NOT NULL,
    est_unit_cost numeric NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Inventory lots (R7): one per receipt line or beginning balance. The unit cost is the actual
-- one once the lot's PO closed (act_unit_cost), else the estimate.
CREATE TABLE lots (
    lot_id        text PRIMARY KEY,
    lic           text    NOT NULL,
    office        text    NOT NULL,
    kind          text    NOT NULL,
    reference     text,
    document      text    NOT NULL,
    line_no       int,
    received_on   date    NOT NULL,
    est_unit_cost numeric NOT NULL,
    act_unit_cost numeric,
    received_qty  numeric NOT NULL,
    used_qty      numeric NOT NULL DEFAULT 0,
    allocated_qty numeric NOT NULL DEFAULT 0,
    current_qty   numeric GENERATED ALWAYS AS (received_qty - used_qty) STORED,
    status        text GENERATED ALWAYS AS (
                      CASE WHEN received_qty - used_qty > 0 THEN 'open' ELSE 'closed' END
                  ) STORED,
    event_id      text    NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lots_by_lic ON lots (lic, status, received_on);
CREATE INDEX lots_by_reference ON lots (reference, lic);

-- Manufacturer lots inside inventory lots, with expiry (R3).
CREATE TABLE mfr_lots (
    lot_id        text    NOT NULL,
    mfr_lot       text    NOT NULL,
    lic           text    NOT NULL,
    expires_on    date,
    received_qty  numeric NOT NULL,
    used_qty      numeric NOT NULL DEFAULT 0,
    allocated_qty numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (lot_id, mfr_lot)
);
CREATE INDEX mfr_lots_by_number ON mfr_lots (lic, mfr_lot);

-- Stock at an office that no inventory lot holds (R12).
CREATE TABLE unallocated (
    lic      text    NOT NULL,
    office   text    NOT NULL,
    quantity numeric NOT NULL,
    PRIMARY KEY (lic, office)
);

-- Each serial's current state in each lot it was ever received into.
CREATE TABLE serials (
    lic          text    NOT NULL,
    serial       text    NOT NULL,
    lot_id       text    NOT NULL,
    mfr_lot      text,
    expires_on   date,
    status       text    NOT NULL,
    document     text,
    line_no      int,
    counterparty text,
    unit_cost    numeric NOT NULL,
    received_on  date    NOT NULL,
    changed_on   date    NOT NULL,
    PRIMARY KEY (lic, serial, lot_id)
);
CREATE INDEX serials_by_lot ON serials (lot_id, serial);

-- Inventory usage records (R10, R12, R13): + used, − reversed or unallocated.
CREATE TABLE usage (
    usage_id      text PRIMARY KEY,
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    lic           text    NOT NULL,
    lot_id        text,
    mfr_lot       text,
    serial        text,
    expires_on    date,
    source        text    NOT NULL,
    quantity      numeric NOT NULL,
    unit_cost     numeric NOT NULL,
    est_unit_cost numeric NOT NULL,
    total_cost    numeric NOT NULL,
    office        text    NOT NULL,
    document      text    NOT NULL,
    line_no       int,
    counterparty  text,
    used_on       date    NOT NULL,
    event_id      text    NOT NULL
);
CREATE INDEX usage_by_lic ON usage (lic, seq);
CREATE INDEX usage_by_lot ON usage (lot_id, seq) WHERE lot_id IS NOT NULL;
CREATE INDEX usage_by_mfr_lot ON usage (lic, mfr_lot, seq) WHERE mfr_lot IS NOT NULL;
CREATE INDEX usage_by_serial ON usage (lic, serial, seq) WHERE serial IS NOT NULL;

-- Transaction records (R15): every change to a lot or serial, the trace's source.
CREATE TABLE transactions (
    txn_id       text PRIMARY KEY,
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    lic          text    NOT NULL,
    lot_id       text,
    mfr_lot      text,
    serial       text,
    expires_on   date,
    event_type   text    NOT NULL,
    record       text    NOT NULL,
    quantity     numeric NOT NULL,
    stock_change numeric NOT NULL,
    unit_cost    numeric NOT NULL,
    cost         numeric NOT NULL,
    office       text    NOT NULL,
    document     text    NOT NULL,
    line_no      int,
    counterparty text,
    reference    text,
    reason       text    NOT NULL DEFAULT '',
    occurred_on  date    NOT NULL,
    event_id     text    NOT NULL
);
CREATE INDEX transactions_by_mfr_lot ON transactions (lic, mfr_lot, occurred_on, seq)
    WHERE mfr_lot IS NOT NULL;
CREATE INDEX transactions_by_serial ON transactions (lic, serial, occurred_on, seq)
    WHERE serial IS NOT NULL;
CREATE INDEX transactions_by_lot ON transactions (lot_id, occurred_on, seq)
    WHERE lot_id IS NOT NULL;

-- COGS entries: each usage at its booked cost, and reconciliations to the actual cost (R16).
CREATE TABLE cogs (
    entry_key  text PRIMARY KEY,
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    lic        text    NOT NULL,
    lot_id     text,
    usage_id   text    NOT NULL,
    kind       text    NOT NULL,
    source     text    NOT NULL,
    quantity   numeric NOT NULL,
    unit_cost  numeric NOT NULL,
    amount     numeric NOT NULL,
    po         text,
    entered_on date    NOT NULL,
    event_id   text    NOT NULL
);
CREATE INDEX cogs_by_lot ON cogs (lot_id, seq) WHERE lot_id IS NOT NULL;
CREATE INDEX cogs_by_usage ON cogs (usage_id);

-- Purchase-order lines (inventory.costs): ordered, purchased, actual cost, closings (R16).
CREATE TABLE purchase_orders (
    po            text    NOT NULL,
    lic           text    NOT NULL,
    ordered_qty   numeric,
    purchased_qty numeric,
    act_unit_cost numeric,
    closed        boolean NOT NULL DEFAULT false,
    closings      int     NOT NULL DEFAULT 0,
    closed_on     date,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (po, lic)
);
