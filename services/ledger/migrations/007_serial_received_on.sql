-- A serial received and moved again in one consumer batch was written with the date of its
-- last change as its received_on (R15). Every serial record's receipt date is the date of the
-- receipt or beginning balance that brought it into the lot.
UPDATE serials AS s SET received_on = t.occurred_on
FROM transactions AS t
WHERE t.lic = s.lic AND t.serial = s.serial AND t.lot_id = s.lot_id
  AND t.event_type IN ('receipt', 'beginning_balance')
  AND t.occurred_on <> s.received_on;
