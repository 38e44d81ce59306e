-- The actual unit cost a PO's last closing applied to its lots and COGS (R16), kept apart from
-- the actual cost the PO last named: a PO reopened (`closed: false`) to correct its cost names
-- the corrected one, which is applied, and reconciled against this one, when it closes again.
-- Until now a PO was never reopened, so every PO closed with a cost had applied it.
ALTER TABLE purchase_orders ADD COLUMN applied_unit_cost numeric;
UPDATE purchase_orders SET applied_unit_cost = act_unit_cost WHERE closings > 0;
