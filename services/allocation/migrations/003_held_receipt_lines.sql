-- Held receipt lines: a document with several lines is received whole or not at all. Each line
-- is decided and applied by its LIC's writer, but its stock is held (not free, serials 'held')
-- and its event kept until receiving confirms the line (every line held) or cancels it (some
-- line refused). See services/allocation/domain/holding.py.

ALTER TABLE inventory_lots ADD COLUMN held numeric NOT NULL DEFAULT 0 CHECK (held >= 0);
ALTER TABLE inventory_lots ADD CONSTRAINT inventory_lots_held_within_on_hand
    CHECK (allocated + held <= on_hand);
ALTER TABLE mfr_lots ADD COLUMN held numeric NOT NULL DEFAULT 0 CHECK (held >= 0);
ALTER TABLE mfr_lots ADD CONSTRAINT mfr_lots_held_within_on_hand
    CHECK (allocated + held <= on_hand);

ALTER TABLE units DROP CONSTRAINT units_status_check;
ALTER TABLE units ADD CONSTRAINT units_status_check CHECK (
    status IN ('available', 'allocated', 'held', 'shipped', 'returned_to_vendor', 'removed')
);
-- A held unit keeps its serial: no other unit of the LIC may take it meanwhile (R4).
ALTER TABLE units DROP CONSTRAINT units_one_in_stock;
ALTER TABLE units ADD CONSTRAINT units_one_in_stock EXCLUDE USING btree (lic WITH =, serial WITH =)
    WHERE (status IN ('available', 'allocated', 'held')) DEFERRABLE INITIALLY DEFERRED;

-- The held lines themselves (part of the LIC's state).
CREATE TABLE held_lines (
    lic         text  NOT NULL,
    command_id  text  NOT NULL,
    kind        text  NOT NULL CHECK (kind IN ('receipt', 'return')),
    shipment_id text  NOT NULL,
    line_no     int   NOT NULL,
    picks       jsonb NOT NULL,
    lot_id      text,
    returned    jsonb NOT NULL,
    PRIMARY KEY (lic, command_id)
);

-- Each held line's encoded event, published as it is when the line is confirmed.
CREATE TABLE held_events (
    command_id text  PRIMARY KEY,
    payload    bytea NOT NULL,
    headers    jsonb NOT NULL
);
