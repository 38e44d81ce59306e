-- `GET /usage` lists an item's usage records oldest first, by the date each was used on, as
-- `/trace` lists its records (a loss dated before a shipment but recorded after it comes
-- first), recording order breaking ties so pages stay stable. Its indexes are rebuilt in that
-- order, replacing the ones in recording order (nothing else reads usage in that order; the
-- PO-close reconciliation finds a lot's usage by lot_id, which the new lot index leads with).
DROP INDEX usage_by_lic, usage_by_lot, usage_by_mfr_lot, usage_by_serial;
CREATE INDEX usage_by_lic ON usage (lic, used_on, seq);
CREATE INDEX usage_by_lot ON usage (lot_id, used_on, seq) WHERE lot_id IS NOT NULL;
CREATE INDEX usage_by_mfr_lot ON usage (lic, mfr_lot, used_on, seq) WHERE mfr_lot IS NOT NULL;
CREATE INDEX usage_by_serial ON usage (lic, serial, used_on, seq) WHERE serial IS NOT NULL;
