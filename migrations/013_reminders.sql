-- Reminders (CONTRACT section 12): one row per incident whose severity has `incidents.update_every_minutes`. The row
-- is the truth and a BullMQ delayed job only its alarm clock, so a lost job is re-added by the reconciler. Each
-- `/incident update` bumps `generation` (a timer of an older generation finds itself stale) and moves `due_at`;
-- resolving clears `due_at`. `claimed_until` is the lease that lets one worker of any number post a reminder.
CREATE TABLE incident_reminders (
  incident       integer PRIMARY KEY REFERENCES incidents (number),
  generation     integer NOT NULL DEFAULT 1,
  period_ms      double precision NOT NULL CHECK (period_ms > 0),
  -- The declaration, then the latest /incident update: what "no update for ..." counts from.
  last_update_at timestamptz NOT NULL,
  -- NULL once the incident is resolved.
  due_at         timestamptz,
  claimed_until  timestamptz,
  reminders_sent integer NOT NULL DEFAULT 0
);
CREATE INDEX incident_reminders_due ON incident_reminders (due_at) WHERE due_at IS NOT NULL;
