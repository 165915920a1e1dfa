-- Workflows, their cases and labels: what the worker records from Orthanc's series and SEGs.
-- Plain names and views so operators can browse with psql or pgAdmin.

CREATE TABLE workflows (
    id                         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                       text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    dataset_id                 integer NOT NULL UNIQUE CHECK (dataset_id BETWEEN 1 AND 999),
    dataset_name               text NOT NULL CHECK (dataset_name ~ '^[A-Za-z0-9]{1,64}$'),
    case_key_prefix            text NOT NULL UNIQUE,
    -- Keyed hash input for case keys: keys stay stable for the workflow but cannot be
    -- recomputed from a SeriesInstanceUID by someone without the database.
    case_key_salt              bytea NOT NULL,
    modality                   text,
    series_description_pattern text,
    body_part                  text,
    allow_ohif_default_names   boolean NOT NULL DEFAULT true,
    state                      text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused')),
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workflow_labels (
    workflow_id bigint NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    value       smallint NOT NULL CHECK (value BETWEEN 1 AND 255),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    synonyms    text[] NOT NULL DEFAULT '{}',
    code        text,
    colour      text CHECK (colour ~ '^#[0-9a-fA-F]{6}$'),
    PRIMARY KEY (workflow_id, value)
);
CREATE UNIQUE INDEX workflow_labels_name ON workflow_labels (workflow_id, lower(name));

CREATE TABLE cases (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id            bigint NOT NULL REFERENCES workflows (id),
    case_key               text NOT NULL UNIQUE,
    status                 text NOT NULL DEFAULT 'unlabeled' CHECK (status IN ('unlabeled', 'labeled', 'unusable')),
    status_reason          text,
    orthanc_series_id      text NOT NULL,
    orthanc_study_id       text NOT NULL,
    study_instance_uid     text NOT NULL,
    series_instance_uid    text NOT NULL,
    frame_of_reference_uid text,
    sop_instance_uids      text[] NOT NULL,
    modality               text,
    series_description     text,
    body_part              text,
    instance_count         integer NOT NULL,
    -- {columns, rows, slices, spacing[3], origin[3], orientation[6]}; null when the series has no usable geometry.
    geometry               jsonb,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workflow_id, series_instance_uid)
);
CREATE INDEX cases_series ON cases (series_instance_uid);
CREATE INDEX cases_workflow_created ON cases (workflow_id, id DESC);

CREATE TABLE labels (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id             bigint NOT NULL REFERENCES cases (id),
    sop_instance_uid    text NOT NULL,
    orthanc_instance_id text NOT NULL,
    source              text NOT NULL CHECK (source IN ('manual', 'model', 'import')),
    author              text,
    -- [{segment_number, segment_label, label_value, label_name, match, painted_frames}]
    segments            jsonb NOT NULL DEFAULT '[]',
    verdict             text NOT NULL CHECK (verdict IN ('accepted', 'rejected')),
    rejection_reason    text,
    is_current          boolean NOT NULL DEFAULT false,
    painted_slices      integer[] NOT NULL DEFAULT '{}',
    -- When the SEG says it was made (ContentDate/Time, else SeriesDate/Time); orders "newest".
    content_time        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (case_id, sop_instance_uid),
    CHECK ((verdict = 'rejected') = (rejection_reason IS NOT NULL)),
    CHECK (NOT is_current OR verdict = 'accepted')
);
CREATE UNIQUE INDEX labels_one_current ON labels (case_id) WHERE is_current;

-- SEGs that reference no case yet (their series is not stable, not matched, or unknown).
-- Resolved, and deleted, when a case of a referenced series appears.
CREATE TABLE pending_segmentations (
    sop_instance_uid                text PRIMARY KEY,
    orthanc_instance_id             text NOT NULL,
    referenced_series_instance_uids text[] NOT NULL,
    reason                          text NOT NULL,
    created_at                      timestamptz NOT NULL DEFAULT now(),
    updated_at                      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pending_segmentations_series ON pending_segmentations USING gin (referenced_series_instance_uids);

CREATE VIEW case_overview AS
SELECT c.case_key,
       w.name AS workflow,
       c.status,
       c.status_reason,
       c.modality,
       c.series_description,
       c.instance_count,
       c.series_instance_uid,
       c.orthanc_series_id,
       (SELECT count(*) FROM labels l WHERE l.case_id = c.id) AS label_count,
       (SELECT l.sop_instance_uid FROM labels l WHERE l.case_id = c.id AND l.is_current) AS current_label,
       c.created_at,
       c.updated_at
FROM cases c
JOIN workflows w ON w.id = c.workflow_id;

CREATE VIEW label_overview AS
SELECT c.case_key,
       w.name AS workflow,
       l.sop_instance_uid,
       l.source,
       l.author,
       l.verdict,
       l.rejection_reason,
       l.is_current,
       cardinality(l.painted_slices) AS painted_slice_count,
       l.created_at
FROM labels l
JOIN cases c ON c.id = l.case_id
JOIN workflows w ON w.id = c.workflow_id;

CREATE VIEW workflow_overview AS
SELECT w.name,
       w.state,
       w.dataset_id,
       w.dataset_name,
       (SELECT string_agg(wl.value || '=' || wl.name, ', ' ORDER BY wl.value) FROM workflow_labels wl WHERE wl.workflow_id = w.id) AS labels,
       (SELECT count(*) FROM cases c WHERE c.workflow_id = w.id) AS cases,
       (SELECT count(*) FROM cases c WHERE c.workflow_id = w.id AND c.status = 'labeled') AS labeled_cases,
       w.created_at
FROM workflows w;

-- SEGs whose ReferencedSeriesSequence is missing are matched through the instances their frames reference.
CREATE INDEX cases_sop_instance_uids ON cases USING gin (sop_instance_uids);
