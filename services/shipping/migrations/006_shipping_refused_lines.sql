-- A line whose picks shipping refuses itself (R5, R14) is still sent to allocation: its
-- AllocateLine carries the problem, allocation answers it as it is and decides nothing, and the
-- item the line names locks (R2). It waits as action 'refuse': it will hold nothing, so a cancel
-- or a resend has nothing to release for it.
ALTER TABLE pending_commands DROP CONSTRAINT pending_commands_action_check;
ALTER TABLE pending_commands ADD CONSTRAINT pending_commands_action_check
    CHECK (action IN ('allocate', 'refuse', 'release', 'ship'));
