-- Adjustments the intake holds for an item it does not know yet. Upstream publishes item master
-- data and adjustments on two topics, and Kafka does not order across topics: a new item's
-- first adjustment may be read before its UpsertItem, and would be refused UNKNOWN_ITEM. The
-- intake holds it instead, publishing nothing, until it passes the item's UpsertItem (the
-- held adjustments follow it on inventory.commands, in the order held) or
-- LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS pass (then they go on, to be refused as before). A row is
-- deleted by the transaction that publishes its command.
CREATE TABLE held_adjustments (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- the order held
    command_id text        NOT NULL UNIQUE,
    lic        text        NOT NULL,
    -- The AdjustStock command, encoded as it is published (kept as text, not re-rendered).
    command    text        NOT NULL,
    held_at    timestamptz NOT NULL DEFAULT now()
);
-- The held adjustments of an item just passed; the due ones (the oldest are the lowest ids).
CREATE INDEX held_adjustments_lic ON held_adjustments (lic, id);

-- The LICs whose UpsertItem the intake has passed to inventory.commands: an adjustment for any
-- other is held. Allocation's own items are read by another consumer, possibly in another
-- process and later; this is what the intake itself has sent. Seeded with every item
-- allocation knows, so an upgrade holds nothing for an existing item.
CREATE TABLE intake_items (
    lic       text        PRIMARY KEY,
    passed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO intake_items (lic) SELECT lic FROM items;
