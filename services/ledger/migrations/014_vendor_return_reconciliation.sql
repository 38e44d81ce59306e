-- A PO closing now reconciles a return to vendor's usage too (R16): it was booked at the
-- estimate like any usage, and without its entry a lot's usage records and reconciliations
-- fell short of its used value. Its entry is a `vendor_return_reconciliation` (no cost of goods
-- sold: COGS totals leave it out, as they leave the return; migration 003 still holds for
-- `usage` entries). Returns to vendor of a PO that closed before this version get the entry
-- the last closing would have written: to the cost it applied to their lot, keyed by it.
-- And a reconciliation is dated no earlier than its usage: entries a backdated close dated
-- before the usage they correct take the usage's date.
INSERT INTO cogs (entry_key, lic, lot_id, usage_id, kind, source, quantity, unit_cost, amount,
                  po, entered_on, event_id)
SELECT 'reconcile:' || p.po || ':' || p.lic || ':' || p.closings || ':' || u.usage_id,
       u.lic, u.lot_id, u.usage_id, 'vendor_return_reconciliation', u.source, u.quantity,
       l.act_unit_cost - u.unit_cost, u.quantity * l.act_unit_cost - u.total_cost, p.po,
       greatest(p.closed_on, u.used_on), 'migration:014_vendor_return_reconciliation'
FROM usage AS u
JOIN lots AS l ON l.lot_id = u.lot_id AND l.kind = 'purchase' AND l.act_unit_cost IS NOT NULL
JOIN purchase_orders AS p ON p.po = l.reference AND p.lic = l.lic AND p.closings > 0
WHERE u.source = 'vendor_return' AND u.quantity * l.act_unit_cost <> u.total_cost
ORDER BY u.seq
ON CONFLICT (entry_key) DO NOTHING;

UPDATE cogs AS c SET entered_on = u.used_on
FROM usage AS u
WHERE c.usage_id = u.usage_id AND c.kind <> 'usage' AND c.entered_on < u.used_on;
