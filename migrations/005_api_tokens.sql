-- Personal API tokens for /api/v1 and the `lifeline` CLI, and plans that wait in the Slack outbox.

-- Only the SHA-256 of each token is kept. A token is 256 random bits, not a password a person chose: nobody can
-- guess one or search its space, so a fast hash is enough and a slow one (bcrypt, scrypt) would only slow every
-- API call down. The hash is what the lookup uses, so finding a token costs one index probe.
CREATE TABLE api_tokens (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  token_hash    bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
  slack_user    text NOT NULL,
  -- How it was made: 'slack' (/dr token) or 'lifeline-admin' (token create, for when Slack is down).
  created_via   text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  expires_at    timestamptz NOT NULL,
  revoked_at    timestamptz,
  last_used_at  timestamptz,
  CHECK (expires_at > created_at)
);
CREATE INDEX api_tokens_live_by_user ON api_tokens (slack_user) WHERE revoked_at IS NULL;

-- A plan Slack did not take (it was down) waits here as a reference to its job, not as text: it is rendered from the
-- job's state when it goes out, so it carries Approve/Reject while the job still awaits approval.
ALTER TABLE slack_outbox ADD COLUMN plan_of integer REFERENCES recovery_jobs (number);
ALTER TABLE slack_outbox ALTER COLUMN text DROP NOT NULL;
ALTER TABLE slack_outbox ADD CONSTRAINT slack_outbox_text_or_plan CHECK ((text IS NULL) <> (plan_of IS NULL));
