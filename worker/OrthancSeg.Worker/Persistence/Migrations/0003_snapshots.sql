-- Dataset snapshots (design §3, §5): numbered, frozen exports of a workflow to nnUNet_raw/DatasetNNN_Name.
-- A snapshot row is created by ExportSnapshot and filled in by its durable job; once succeeded it never changes.

CREATE TABLE snapshots (
    -- The snapshot number people and the CLI use ("snapshots show 7").
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id     bigint NOT NULL REFERENCES workflows (id),
    --   queued    waiting for the job; running: being built; succeeded: on disk and frozen;
    --   failed    gave up (nothing usable, bad workflow, or every attempt failed); error says why
    state           text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    job_id          bigint REFERENCES jobs (id),
    -- The dataset folder: <nnUNet_raw>/DatasetNNN_Name.
    dataset_path    text NOT NULL,
    -- Progress while running (streamed by WatchSnapshot), final figures afterwards.
    cases_total     integer NOT NULL DEFAULT 0,
    cases_done      integer NOT NULL DEFAULT 0,
    bytes_read      bigint NOT NULL DEFAULT 0,
    bytes_written   bigint NOT NULL DEFAULT 0,
    included_count  integer NOT NULL DEFAULT 0,
    excluded_count  integer NOT NULL DEFAULT 0,
    reused_count    integer NOT NULL DEFAULT 0,
    dataset_json    jsonb,
    dataset_json_sha256 text,
    -- {included: [...], excluded: [{case_key, reason}], verification: {passed, problems, checked_files}}
    report          jsonb,
    error           text,
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    duration_ms     bigint,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX snapshots_workflow ON snapshots (workflow_id, id DESC);
-- One export of a workflow at a time: they write the same folder.
CREATE UNIQUE INDEX snapshots_one_active ON snapshots (workflow_id) WHERE state IN ('queued', 'running');

-- Each case a snapshot includes, the label it used and the content hashes of the files written for it.
CREATE TABLE snapshot_cases (
    snapshot_id          bigint NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    case_id              bigint NOT NULL REFERENCES cases (id),
    case_key             text NOT NULL,
    label_id             bigint NOT NULL REFERENCES labels (id),
    label_sop_instance_uid text NOT NULL,
    -- SHA-256 of the case's ordered SOPInstanceUIDs and Orthanc series id: "same series content" for reuse.
    series_fingerprint   text NOT NULL,
    image_file           text NOT NULL,
    image_sha256         text NOT NULL,
    image_bytes          bigint NOT NULL,
    label_file           text NOT NULL,
    label_sha256         text NOT NULL,
    label_bytes          bigint NOT NULL,
    -- True when the files were taken over from the previous snapshot instead of fetched again.
    reused               boolean NOT NULL,
    PRIMARY KEY (snapshot_id, case_id)
);

CREATE VIEW snapshot_overview AS
SELECT s.id AS snapshot,
       w.name AS workflow,
       s.state,
       s.dataset_path,
       s.included_count,
       s.excluded_count,
       s.reused_count,
       (s.report -> 'verification' ->> 'passed')::boolean AS verified,
       s.duration_ms,
       s.error,
       s.created_at,
       s.finished_at
FROM snapshots s
JOIN workflows w ON w.id = s.workflow_id;
