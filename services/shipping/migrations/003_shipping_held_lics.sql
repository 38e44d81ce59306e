-- A line may hold allocations under more than one LIC at once: a resend that changes its LIC
-- releases the old LIC's allocation while the new one is made, and the two LICs' answers reach
-- shipping from different partitions, in no order between them. `held_lics` is every LIC
-- allocation holds stock under for the line (a JSON array of LICs, sorted), so a cancel or a
-- later change releases each of them.
ALTER TABLE shipment_lines ADD COLUMN held_lics jsonb NOT NULL DEFAULT '[]';
UPDATE shipment_lines SET held_lics = jsonb_build_array(held_lic) WHERE held_lic IS NOT NULL;
ALTER TABLE shipment_lines DROP COLUMN held_lic;
