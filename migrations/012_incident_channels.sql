-- Incident channels (CONTRACT section 12): a Slack channel per incident. incident_channels is what Lifeline owes
-- Slack for it (create and set up, then archive some hours after resolve); a row exists before its BullMQ job does,
-- so the reconciler re-adds a lost job. One row per incident (the primary key) and one channel per incident
-- (incidents.channel_id, unique), so a Slack retry, a double submit or a re-run job never makes a second channel.
ALTER TABLE incidents ADD COLUMN channel_id text UNIQUE;

CREATE TABLE incident_channels (
  incident       integer PRIMARY KEY REFERENCES incidents (number),
  -- The name Slack took (after any `-2`, `-3` for a clash).
  name           text UNIQUE,
  requested_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  created_at     timestamptz,
  -- The card posted in the channel (so a re-run never posts a second one), and when the set-up was complete.
  card_ts        text,
  set_up_at      timestamptz,
  attempts       integer NOT NULL DEFAULT 0,
  last_error     text,
  -- Slack refused the channel, or Lifeline gave up on it: said in the incident's thread, and never tried again.
  failed_at      timestamptz,
  archive_due_at timestamptz,
  archived_at    timestamptz
);
CREATE INDEX incident_channels_owed ON incident_channels (incident)
  WHERE failed_at IS NULL AND (set_up_at IS NULL OR (archive_due_at IS NOT NULL AND archived_at IS NULL));
