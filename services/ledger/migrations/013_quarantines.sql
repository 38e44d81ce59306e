-- Quarantines in force (QA or recall holds, from StockQuarantined): a rule per item naming a
-- manufacturer lot, an inventory lot or both, at one office or every office ('' = any), as
-- allocation keeps it. The read API and the dashboard match stock against them; the history of
-- each quarantine and release is in `transactions` (event_type quarantine / quarantine_release).
CREATE TABLE quarantines (
    lic           text NOT NULL,
    mfr_lot       text NOT NULL,
    lot_id        text NOT NULL,
    office        text NOT NULL,
    quarantine_id text NOT NULL,
    reason        text NOT NULL,
    since         date NOT NULL,
    event_id      text NOT NULL,
    PRIMARY KEY (lic, mfr_lot, lot_id, office)
);
