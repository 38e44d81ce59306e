-- Non-negative quantities are the last backstop (DESIGN §6), under the core's own checks: a
-- lot's or manufacturer lot's `used` (on_hand = received − used, and a count puts back at most
-- what was used, R11) and unallocated stock (R12: a row holds some; none drops it). NOT VALID:
-- every row written from now on is checked, and an upgrade never fails on a row of old.
ALTER TABLE inventory_lots
    ADD CONSTRAINT inventory_lots_used_not_negative CHECK (used >= 0) NOT VALID;
ALTER TABLE mfr_lots
    ADD CONSTRAINT mfr_lots_used_not_negative CHECK (used >= 0) NOT VALID;
ALTER TABLE unallocated
    ADD CONSTRAINT unallocated_quantity_not_negative CHECK (quantity >= 0) NOT VALID;
