-- Alerts in (issue 11): an incident an alert declared remembers its source. `source_kind` + `source_key` say which
-- alert (an Alertmanager groupKey, a CloudWatch alarm ARN); `source` keeps what the card shows (title, labels,
-- annotations, link). At most one open incident per source: the unique index, not a check then an insert, decides
-- it, so concurrent webhooks for one group (on any number of replicas) declare one incident.
ALTER TABLE incidents
  ADD COLUMN source_kind text CHECK (source_kind IN ('alertmanager', 'cloudwatch')),
  ADD COLUMN source_key  text,
  ADD COLUMN source      jsonb,
  ADD CONSTRAINT incidents_source_whole CHECK ((source_kind IS NULL) = (source_key IS NULL));
CREATE UNIQUE INDEX incidents_one_open_per_source ON incidents (source_kind, source_key)
  WHERE resolved_at IS NULL AND source_key IS NOT NULL;
