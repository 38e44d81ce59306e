-- Stock value as of a day (GET /valuation) reads back from now the transaction records dated
-- after it. A BRIN index: records mostly arrive in date order, so block ranges by date find a
-- recent day's records without a scan, built in one quick pass and near free to keep up.
CREATE INDEX transactions_by_date ON transactions USING brin (occurred_on);
