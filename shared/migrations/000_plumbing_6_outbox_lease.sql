-- The outbox relay leader's heartbeat (shared.outbox). Leadership is a session-level advisory
-- lock, released by the server when the leader's connection closes; a leader that is alive but
-- stuck (a paused process, a blocked event loop) would keep it forever and stall the service's
-- output. The leader records its backend pid here and renews `renewed_at` every few seconds; a
-- waiting process that finds it stale ends that backend, which releases the lock to it.
CREATE TABLE outbox_lease (
    id int PRIMARY KEY CHECK (id = 1),
    pid int NOT NULL,
    renewed_at timestamptz NOT NULL
);
