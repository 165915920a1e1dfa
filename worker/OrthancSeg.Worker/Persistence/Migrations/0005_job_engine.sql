-- One job engine for every kind of work (design §2, docs/architecture.md "Jobs"):
--   cancelled             an admin cancelled it; it never runs (again)
--   cancel_requested_at   set by CancelJob; the runner ends the job as cancelled at its next check
--   waits                 hand-backs that did not spend an attempt (a dependency was down, the worker stopped)
--   started_at            when the current or last attempt started
ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'dead', 'cancelled'));
ALTER TABLE jobs ADD COLUMN cancel_requested_at timestamptz;
ALTER TABLE jobs ADD COLUMN waits integer NOT NULL DEFAULT 0 CHECK (waits >= 0);
ALTER TABLE jobs ADD COLUMN started_at timestamptz;

-- A cancel request makes a waiting job due at once, so the runner ends it (and its domain state) without delay.
CREATE INDEX jobs_cancel_requested ON jobs (id) WHERE cancel_requested_at IS NOT NULL AND state IN ('queued', 'failed', 'dead');
-- What `orthancseg jobs list --kind K --state S` scans, newest first.
CREATE INDEX jobs_kind_state ON jobs (kind, state, id);

-- A snapshot whose export was cancelled keeps its number and says so.
ALTER TABLE snapshots DROP CONSTRAINT snapshots_state_check;
ALTER TABLE snapshots ADD CONSTRAINT snapshots_state_check
    CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled'));
