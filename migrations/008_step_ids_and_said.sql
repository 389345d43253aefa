-- Typed job kinds (issue 10): a step is recorded under its kind's stable id, and its name is only what people saw.
-- Steps recorded before ids get the id of the step that bore their name; a name no kind knows keeps no id, and a
-- job still running with such a step is failed, saying so, rather than resumed at a guessed step.
ALTER TABLE recovery_steps ADD COLUMN step text;
UPDATE recovery_steps s SET step = m.step
  FROM recovery_jobs j,
       (VALUES
         ('restore', 'preflight: target reachable, backup readable and intact', 'preflight'),
         ('restore', 'restore into a fresh database', 'restore-fresh'),
         ('restore', 'swap the restored database in', 'swap'),
         ('restore', 'verify', 'verify'),
         ('restore', 'health check', 'health-check'),
         ('restore', 'planner statistics (ANALYZE)', 'analyze'),
         ('restore', 'safety backup of the previous database', 'safety-copy'),
         ('restore', 'clean up', 'clean-up'),
         ('restore', 'safety snapshot of the current instance', 'safety-snapshot'),
         ('restore', 'start the restore into a new instance', 'start-instance'),
         ('restore', 'wait until the new instance is available', 'wait-instance'),
         ('drill', 'preflight: latest backup readable', 'preflight'),
         ('drill', 'restore into a scratch database', 'restore'),
         ('drill', 'checks: verify queries and row counts', 'checks'),
         ('drill', 'drop the scratch database', 'drop'),
         ('backup', 'pg_dump into the store', 'dump'),
         ('backup', 'check the stored backup', 'check'),
         ('backup', 'daily RDS snapshot', 'rds-snapshot'),
         ('backup', 'retention', 'retention'),
         ('scale', 'set desired count', 'set-desired'),
         ('scale', 'wait until running = desired', 'wait-running'),
         ('redeploy', 'force new deployment', 'force-deployment'),
         ('redeploy', 'follow the rollout', 'follow-rollout')
       ) AS m(kind, name, step)
  WHERE j.number = s.job AND j.kind = m.kind AND s.name = m.name;

-- Outcomes and step details name people as parts, not as Slack mentions: ["cancelled by ", {"person": "U…"}, "…"].
-- Each renderer shows a person its own way; text stored before this had them as <@U…>, which become parts here.
CREATE FUNCTION pg_temp.said_parts(sentence text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  parts jsonb := '[]';
  rest text := sentence;
  found text[];
  at integer;
BEGIN
  IF sentence IS NULL THEN
    RETURN NULL;
  END IF;
  LOOP
    found := regexp_match(rest, '<@([UW][A-Z0-9]+)>');
    EXIT WHEN found IS NULL;
    at := strpos(rest, '<@' || found[1] || '>');
    IF at > 1 THEN
      parts := parts || jsonb_build_array(left(rest, at - 1));
    END IF;
    parts := parts || jsonb_build_array(jsonb_build_object('person', found[1]));
    rest := substr(rest, at + length(found[1]) + 3);
  END LOOP;
  IF rest <> '' THEN
    parts := parts || jsonb_build_array(rest);
  END IF;
  RETURN parts;
END $$;

ALTER TABLE recovery_jobs ALTER COLUMN outcome TYPE jsonb USING pg_temp.said_parts(outcome);
ALTER TABLE recovery_steps ALTER COLUMN detail DROP DEFAULT;
ALTER TABLE recovery_steps ALTER COLUMN detail TYPE jsonb USING pg_temp.said_parts(detail);
ALTER TABLE recovery_steps ALTER COLUMN detail SET DEFAULT '[]';
DROP FUNCTION pg_temp.said_parts(text);
