-- Incidents, their timeline, the escalation ladder and request de-duplication.
CREATE TABLE incidents (
  number            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  severity          text NOT NULL CHECK (severity IN ('sev1', 'sev2', 'sev3', 'sev4')),
  title             text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 150),
  declared_by       text NOT NULL,
  declared_at       timestamptz NOT NULL DEFAULT now(),
  declared_in       text NOT NULL,
  card_channel      text,
  card_ts           text,
  acknowledged_by   text,
  acknowledged_at   timestamptz,
  resolved_by       text,
  resolved_at       timestamptz,
  resolution_note   text,
  ladder_generation integer NOT NULL DEFAULT 0
);
CREATE INDEX incidents_open ON incidents (number) WHERE resolved_at IS NULL;
CREATE INDEX incidents_card ON incidents (card_channel, card_ts);

-- Append-only: the timeline is the incident's audit trail.
CREATE TABLE incident_events (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  incident   integer NOT NULL REFERENCES incidents (number),
  at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor      text NOT NULL,
  kind       text NOT NULL,
  detail     text NOT NULL DEFAULT ''
);
CREATE INDEX incident_events_by_incident ON incident_events (incident, id);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER incident_events_append_only BEFORE UPDATE OR DELETE ON incident_events
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER incident_events_no_truncate BEFORE TRUNCATE ON incident_events
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- One row per ladder step. The row, not the Redis job, is the truth: a step is claimed here before it pages.
CREATE TABLE escalation_steps (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  incident      integer NOT NULL REFERENCES incidents (number),
  generation    integer NOT NULL,
  step_index    integer NOT NULL,
  role          text NOT NULL,
  due_at        timestamptz NOT NULL,
  state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'fired', 'cancelled')),
  claimed_until timestamptz,
  paged_at      timestamptz,
  mentioned_at  timestamptz,
  finished_at   timestamptz,
  UNIQUE (incident, generation, step_index)
);
CREATE INDEX escalation_steps_pending ON escalation_steps (due_at) WHERE state = 'pending';

-- Slack retries and double submits carry the same trigger_id: the first one wins.
CREATE TABLE handled_requests (
  request_key text PRIMARY KEY,
  handled_at  timestamptz NOT NULL DEFAULT now()
);

-- Every PagerDuty alert Lifeline opened, so acknowledge/resolve reach each one exactly, even after a restart.
CREATE TABLE page_keys (
  incident            integer NOT NULL REFERENCES incidents (number),
  role                text NOT NULL,
  dedup_key           text NOT NULL,
  triggered_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
  acknowledge_sent_at timestamptz,
  resolve_sent_at     timestamptz,
  PRIMARY KEY (incident, role)
);
