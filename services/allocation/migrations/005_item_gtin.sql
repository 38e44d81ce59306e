-- An item's GTIN, kept like its other fields: an UpsertItem that leaves it out keeps it, and
-- ItemUpserted always carries it (receiving and shipping check scanned barcodes against it).
ALTER TABLE items ADD COLUMN gtin text;
