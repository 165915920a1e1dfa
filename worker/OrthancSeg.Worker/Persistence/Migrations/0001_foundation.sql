-- The machinery every feature needs (design §2): where the worker is in Orthanc's change log, and a
-- durable job queue with dead letters. Each migration runs in one transaction under an advisory lock.

-- How far Orthanc's /changes log has been fully processed. One row: the worker replays from here at
-- start-up and periodically, so events the bridge could not deliver are not lost.
CREATE TABLE change_cursor (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_seq   bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO change_cursor DEFAULT VALUES;

-- Work that can fail (fetch, convert, dispatch). Claimed with FOR UPDATE SKIP LOCKED under a lease, so
-- several worker replicas share it; a claimer that dies loses its lease and the job runs again.
--   queued    waiting for its first attempt (or retried by an admin), not before not_before
--   running   leased to lease_owner until lease_expires_at
--   failed    an attempt failed; runs again at not_before (backoff)
--   succeeded done
--   dead      failed max_attempts times; listed in dead_letters until an admin retries it
CREATE TABLE jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text NOT NULL CHECK (kind <> ''),
    idempotency_key  text NOT NULL CHECK (idempotency_key <> ''),
    payload          jsonb NOT NULL DEFAULT '{}',
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer NOT NULL CHECK (max_attempts > 0),
    not_before       timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_expires_at timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    -- Enqueueing the same work twice (a push and a catch-up) must give one job.
    CONSTRAINT jobs_idempotency UNIQUE (kind, idempotency_key),
    CONSTRAINT jobs_running_has_lease CHECK (state <> 'running' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);

-- What a claimer scans: due work, and running work whose lease may have expired.
CREATE INDEX jobs_due ON jobs (not_before, id) WHERE state IN ('queued', 'failed');
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE state = 'running';

-- For operators (psql, pgAdmin) and the admin API: jobs that gave up and wait for a person.
CREATE VIEW dead_letters AS
SELECT id, kind, idempotency_key, payload, attempts, max_attempts, last_error, created_at, finished_at AS dead_since
FROM jobs
WHERE state = 'dead';
