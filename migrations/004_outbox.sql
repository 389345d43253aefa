-- What could not be said in Slack when it happened (Slack was down: the CLI's events, a job's result), said when
-- Slack answers again, in order. An incident whose card never got posted is announced first.
CREATE TABLE slack_outbox (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- Into this incident's card thread; otherwise top-level in `channel`.
  incident    integer REFERENCES incidents (number),
  channel     text,
  text        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  sent_at     timestamptz,
  CHECK (incident IS NOT NULL OR channel IS NOT NULL)
);
CREATE INDEX slack_outbox_pending ON slack_outbox (id) WHERE sent_at IS NULL;
