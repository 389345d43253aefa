-- The status page (CONTRACT section 12): each incident's Atlassian Statuspage incident, and the calls Lifeline owes
-- it. A call is a row before it is a BullMQ job, so a lost job is re-added by the reconciler, and the calls of one
-- incident go out in the order they were asked for.
ALTER TABLE incidents
  ADD COLUMN statuspage_id     text,
  ADD COLUMN statuspage_link   text,
  ADD COLUMN statuspage_status text CHECK (statuspage_status IN ('investigating', 'identified', 'monitoring', 'resolved'));

CREATE TABLE statuspage_calls (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  incident     integer NOT NULL REFERENCES incidents (number),
  -- declare: auto_for at declaration; post: /incident statuspage; resolve: the incident was resolved.
  action       text NOT NULL CHECK (action IN ('declare', 'post', 'resolve')),
  status       text NOT NULL CHECK (status IN ('investigating', 'identified', 'monitoring', 'resolved')),
  body         text NOT NULL,
  requested_by text NOT NULL,
  requested_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  attempts     integer NOT NULL DEFAULT 0,
  last_error   text,
  -- When the first failure was said in the incident's thread (once per call).
  reported_at  timestamptz,
  done_at      timestamptz,
  gave_up_at   timestamptz
);
-- A declaration and a resolve happen once per incident: a retried job or a second replica finds the row there.
CREATE UNIQUE INDEX statuspage_calls_once ON statuspage_calls (incident, action) WHERE action IN ('declare', 'resolve');
CREATE INDEX statuspage_calls_pending ON statuspage_calls (incident, id) WHERE done_at IS NULL AND gave_up_at IS NULL;
