-- Health checks (issue 11): every env with a health_url is probed on a BullMQ job scheduler; the streak of
-- consecutive failures and successes lives here, one row per env, changed under a row lock so that two probes can
-- never count twice. `last_slot` is the scheduler slot (epoch ms) of the last probe counted: a slot whose job runs
-- again (a stalled job taken over by another worker) is not counted a second time. `failing` flips after three in a
-- row; `pending` is what that flip still owes (declare the SEV1 or resolve it) until it is done, and `pending_at` when
-- it was last taken on: a probe a minute later finds it still owed (a crash between the flip and the declaration) and
-- does it again (the unique index keeps it one incident). Incidents gain the source kind `health` (key = env).
ALTER TABLE incidents
  DROP CONSTRAINT incidents_source_kind_check,
  ADD CONSTRAINT incidents_source_kind_check CHECK (source_kind IN ('alertmanager', 'cloudwatch', 'health'));

CREATE TABLE health_checks (
  env             text PRIMARY KEY,
  failures        integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
  successes       integer NOT NULL DEFAULT 0 CHECK (successes >= 0),
  failing         boolean NOT NULL DEFAULT false,
  pending         text CHECK (pending IN ('declare', 'resolve')),
  pending_at      timestamptz,
  last_slot       bigint NOT NULL DEFAULT 0,
  last_ok         boolean,
  last_status     integer,
  last_latency_ms integer,
  last_reason     text,
  probed_at       timestamptz
);
