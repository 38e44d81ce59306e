-- Inventory lot ids are unique across items, but a LIC's decisions see only its own lots: an
-- upsert naming another item's lot would silently move it (ON CONFLICT ... SET lic = ...).
-- The service refuses such a receipt line first; this is the backstop. The WHEN clause is
-- evaluated without calling the function, so ordinary updates pay next to nothing.
CREATE FUNCTION lot_keeps_its_item() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'inventory lot % belongs to item %, not %', OLD.lot_id, OLD.lic, NEW.lic
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER inventory_lots_keep_their_item
    BEFORE UPDATE ON inventory_lots
    FOR EACH ROW WHEN (OLD.lic IS DISTINCT FROM NEW.lic)
    EXECUTE FUNCTION lot_keeps_its_item();

CREATE TRIGGER mfr_lots_keep_their_item
    BEFORE UPDATE ON mfr_lots
    FOR EACH ROW WHEN (OLD.lic IS DISTINCT FROM NEW.lic)
    EXECUTE FUNCTION lot_keeps_its_item();
