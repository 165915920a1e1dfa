-- Inference and labels that come back to the PACS (issue 10, docs/inference.md): a model's prediction of a case is stored in Orthanc as
-- a DICOM SEG and recorded as a label of source 'model' that is only 'proposed' until a person accepts it; label maps made in other tools
-- are imported as labels of source 'import'.

-- A model's label is never ground truth by itself: 'proposed' labels are never current and never exported for training.
ALTER TABLE labels DROP CONSTRAINT labels_verdict_check;
ALTER TABLE labels ADD CONSTRAINT labels_verdict_check CHECK (verdict IN ('accepted', 'rejected', 'proposed'));
-- When a person accepted it (labels accept, or an import): orders "newest" together with the SEG's own content time, so the label a
-- person decided on last is current.
ALTER TABLE labels ADD COLUMN accepted_at timestamptz;
-- Written and recorded by the worker itself (a prediction, an import): when the same SEG comes back through the bridge or the catch-up,
-- recording recognises it by its SOP Instance UID and leaves its source and verdict alone.
ALTER TABLE labels ADD COLUMN worker_written boolean NOT NULL DEFAULT false;

-- Whether new cases of a workflow get a prediction of its active model (Workflow.inference.auto_infer).
CREATE TABLE inference_policies (
    workflow_id bigint PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE,
    auto_infer  boolean NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inferences (
    -- The number people and the CLI use ("inference show 4").
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id         bigint NOT NULL REFERENCES workflows (id),
    case_id             bigint NOT NULL REFERENCES cases (id),
    model_id            bigint NOT NULL REFERENCES models (id),
    -- 'auto' (a new case of a workflow with auto-inference on) or 'manual' (StartInference).
    trigger             text NOT NULL CHECK (trigger IN ('auto', 'manual')),
    job_id              bigint REFERENCES jobs (id),
    backend             text NOT NULL CHECK (backend IN ('local', 'slurm')),
    --   queued: waiting for its job or for resources; running: predicting or storing; succeeded: a SEG stored or no findings;
    --   failed: every attempt failed (error says why); cancelled: an admin cancelled it
    state               text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    -- 'seg_stored' or 'no_findings' once succeeded.
    outcome             text CHECK (outcome IN ('seg_stored', 'no_findings')),
    error               text,
    attempts            integer NOT NULL DEFAULT 0,
    -- The process group id (local) or Slurm job id of the current attempt's predictor, and where it runs.
    backend_job_id      text,
    host                text,
    gpus_given          text,
    -- The attempt's folder (input, output, pid/exit files, log): a restarted worker re-attaches to its predictor from here.
    run_directory       text,
    exit_code           integer,
    label_id            bigint REFERENCES labels (id),
    seg_sop_instance_uid text,
    seg_orthanc_instance_id text,
    -- The worker's own time for the attempt that succeeded (fetch, write, read, SEG, upload, record) and the predictor's, ms.
    worker_ms           bigint,
    predictor_ms        bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'succeeded') = (outcome IS NOT NULL))
);
CREATE INDEX inferences_workflow ON inferences (workflow_id, id DESC);
CREATE INDEX inferences_case ON inferences (case_id, id DESC);
-- Auto-inference runs once per case and model, however often the case is recorded.
CREATE UNIQUE INDEX inferences_auto_once ON inferences (case_id, model_id) WHERE trigger = 'auto';

CREATE VIEW inference_overview AS
SELECT i.id AS inference,
       w.name AS workflow,
       c.case_key,
       i.model_id AS model,
       i.trigger,
       i.backend,
       i.state,
       i.outcome,
       i.seg_sop_instance_uid,
       i.error,
       i.worker_ms,
       i.predictor_ms,
       i.created_at,
       i.finished_at
FROM inferences i
JOIN workflows w ON w.id = i.workflow_id
JOIN cases c ON c.id = i.case_id;
