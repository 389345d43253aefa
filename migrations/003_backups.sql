-- The backup catalogue, restore drills, Lifeline's own RDS snapshots and the open alerts of the RPO watch.

-- One row per backup Lifeline wrote (scheduled or on demand). Backups made by other tools are in the store only.
CREATE TABLE backups (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  env           text NOT NULL,
  name          text NOT NULL,
  store         text NOT NULL,
  job           integer REFERENCES recovery_jobs (number),
  taken_at      timestamptz NOT NULL,
  size_bytes    bigint NOT NULL,
  sha256        text NOT NULL,
  duration_ms   integer NOT NULL,
  -- Exact row count of every table, in the same snapshot pg_dump used: what a drill compares against.
  table_rows    jsonb NOT NULL,
  -- The stored object was read back: its checksum matched and pg_restore --list read it.
  checked_at    timestamptz,
  deleted_at    timestamptz,
  UNIQUE (store, name)
);
CREATE INDEX backups_by_env ON backups (env, taken_at DESC);

CREATE TABLE drills (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  env           text NOT NULL,
  job           integer REFERENCES recovery_jobs (number),
  backup_name   text NOT NULL,
  store         text NOT NULL,
  passed        boolean NOT NULL,
  backup_age_ms bigint NOT NULL,
  restore_ms    integer,
  checks        jsonb NOT NULL,
  finished_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX drills_by_backup ON drills (store, backup_name, finished_at DESC);
CREATE INDEX drills_by_env ON drills (env, finished_at DESC);

CREATE TABLE rds_snapshots (
  id            text PRIMARY KEY,
  env           text NOT NULL,
  instance      text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  deleted_at    timestamptz
);

-- An alert Lifeline raised and has not resolved yet (the RPO watch's per env, a failed backup's per env). It is
-- here, not in memory, so that it survives restarts: one trigger while it is open, one resolve when it clears.
CREATE TABLE open_alerts (
  dedup_key     text PRIMARY KEY,
  env           text NOT NULL,
  kind          text NOT NULL CHECK (kind IN ('rpo', 'backup_failed')),
  summary       text NOT NULL,
  opened_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  paged_at      timestamptz,
  posted_at     timestamptz
);
