-- Not only a request waits for the cancel or ship under way any more: every document read
-- meanwhile does (a cancel or new picks while shipping may be decided either way, depending on
-- whether the ship is refused), and none drops another (a request a later cancel or request
-- overrides is still applied first, so the items it names lock, R2). `queued` holds them all,
-- in the order read: a JSON array of {"request": ...}, {"picks": ...}, {"ship": ...} or
-- {"cancel": ...} (NULL: nothing waits). The one request a row may hold becomes such an array.
UPDATE shipments SET queued = jsonb_build_array(jsonb_build_object('request', queued))
WHERE jsonb_typeof(queued) = 'object';
