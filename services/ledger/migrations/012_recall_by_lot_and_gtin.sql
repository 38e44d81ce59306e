-- A recall notice often names only a manufacturer lot, or the item's GTIN and the lot (GS1:
-- AI 01 and AI 10). `GET /trace?mfr_lot=` finds the items that received the lot number through
-- the manufacturer lots (one row per lot number received into an inventory lot: a small table,
-- written once per receipt line, where an index on the transactions would be written on every
-- movement), then traces each item as `?lic=&mfr_lot=` does.
CREATE INDEX mfr_lots_by_mfr_lot ON mfr_lots (mfr_lot, lic);
-- The item's GTIN as its last ItemUpserted carried it (null: none, or not recorded since), and
-- its GTIN-14 form, which `?gtin=` compares: a GTIN-8, -12 or -13 is the same number with
-- leading zeros, as scans decode it.
ALTER TABLE items ADD COLUMN gtin text;
ALTER TABLE items ADD COLUMN gtin14 text GENERATED ALWAYS AS (
    CASE WHEN gtin ~ '^[0-9]{1,14}$' THEN lpad(gtin, 14, '0') ELSE gtin END
) STORED;
CREATE INDEX items_by_gtin ON items (gtin14) WHERE gtin14 IS NOT NULL;
