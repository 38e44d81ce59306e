-- Quarantine (a QA or recall hold): the rules in force per LIC, each a manufacturer lot, an
-- inventory lot, or both, at one office or every office ('' = any). A rule, not a quantity:
-- a manufacturer lot received after its recall is held too. Released rules are deleted (the
-- ledger keeps their history as transaction records).
CREATE TABLE quarantines (
    lic           text NOT NULL,
    mfr_lot       text NOT NULL,
    lot_id        text NOT NULL,
    office        text NOT NULL,
    quarantine_id text NOT NULL,
    reason        text NOT NULL,
    PRIMARY KEY (lic, mfr_lot, lot_id, office),
    CHECK (mfr_lot <> '' OR lot_id <> '')
);

-- The intake holds quarantines for an unknown item as it holds adjustments: each held
-- command's type, for the header it is published with (rows of old are AdjustStock).
ALTER TABLE held_adjustments ADD COLUMN command_type text NOT NULL DEFAULT 'AdjustStock';
