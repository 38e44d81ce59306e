"""Flow tests: the services' real handlers and a real PostgreSQL, with the broker's hops played
in process by `test_receiving_flows.Bus` (every outbox row handed to the routes that read its
topic, in order), so whole document lifecycles run in milliseconds. They are not integration
tests of the broker path: partitions, offsets and redelivery through a real broker are covered
by tests/integration (`test_shipping_broker`, `test_receiving_unknown_items`, `test_consumer`,
`test_outbox_relay`) and tests/e2e."""
