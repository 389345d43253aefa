-- Backups that can be trusted (issue 9): the safety copy taken before a restore is catalogued like any backup
-- Lifeline makes, and a drill records the checks it could not make, so a pass with a skipped check is not a full pass.

-- A `<prefix>_pre-restore_…` copy of the database a restore replaced (its job is the restore's).
ALTER TABLE backups ADD COLUMN safety_copy boolean NOT NULL DEFAULT false;

-- Each check the drill promised but could not make: [{"check": "row counts", "why": "…"}]; [] for a full drill.
ALTER TABLE drills ADD COLUMN skipped_checks jsonb NOT NULL DEFAULT '[]';
