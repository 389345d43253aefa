-- A running recovery job is fenced to one worker by a lease on its row instead of a PostgreSQL session advisory
-- lock: a session lock vanishes silently with its pooled connection (a PostgreSQL restart, a network cut), after
-- which a second worker could run the same job beside the first one.
--
-- lease_owner is unique per worker process and run; lease_until is set by the server's clock and renewed by the
-- owner's heartbeat; lease_epoch counts every take-over, so a write fenced on (owner, epoch) is refused as soon as
-- somebody else took the job, whatever the clocks say.
ALTER TABLE recovery_jobs
  ADD COLUMN lease_owner text,
  ADD COLUMN lease_until timestamptz,
  ADD COLUMN lease_epoch bigint NOT NULL DEFAULT 0;

-- Whether a cancel may interrupt the step while it runs (it has not made its change yet), so `/dr cancel` can tell
-- the user what will happen to the running step.
ALTER TABLE recovery_steps ADD COLUMN interruptible boolean NOT NULL DEFAULT false;
