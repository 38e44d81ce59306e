-- Sale lines waiting for held receipt or return lines to settle (part of the LIC's state; see
-- services/allocation/domain/waiting.py): in a backlog, a sale decided before the receipt it
-- needs is confirmed waits for the confirmation instead of being refused short of stock.
CREATE TABLE waiting_lines (
    lic           text        NOT NULL,
    command_id    text        NOT NULL,
    seq           int         NOT NULL,
    awaits        jsonb       NOT NULL,
    command       jsonb       NOT NULL,
    waiting_since timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (lic, command_id)
);
