-- Per-workflow training defaults and the retrain policy (issue 9, docs/training.md): what StartTraining uses for what a
-- request leaves unset, and when the worker exports and trains on its own, activating the new model only when it is not worse.

CREATE TABLE workflow_training (
    workflow_id                 bigint PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE,
    -- Defaults; NULL: the built-in default (docs/training.md).
    configuration               text,
    folds                       text[] CHECK (folds IS NULL OR cardinality(folds) > 0),
    trainer                     text,
    plans                       text,
    planner                     text,
    backend                     text CHECK (backend IN ('local', 'slurm')),
    gpus                        integer CHECK (gpus >= 0),
    cpus                        integer CHECK (cpus >= 1),
    memory_mib                  bigint CHECK (memory_mib >= 1),
    time_limit_seconds          bigint CHECK (time_limit_seconds >= 1),
    partition                   text,
    -- The retrain policy.
    retrain_enabled             boolean NOT NULL DEFAULT false,
    retrain_min_new_labels      integer NOT NULL DEFAULT 1 CHECK (retrain_min_new_labels >= 1),
    retrain_min_interval_seconds bigint NOT NULL DEFAULT 0 CHECK (retrain_min_interval_seconds >= 0),
    retrain_min_dice_improvement double precision NOT NULL DEFAULT 0,
    updated_at                  timestamptz NOT NULL DEFAULT now()
);

-- One row per time the retrain policy fired: the export it asked for, the run that trained it, how it ended.
CREATE TABLE retrain_triggers (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id         bigint NOT NULL REFERENCES workflows (id),
    --   exporting  its snapshot is being exported; training: its run is queued or running;
    --   succeeded  its run registered a model (model_comparisons has the decision); failed: error says why
    state               text NOT NULL DEFAULT 'exporting' CHECK (state IN ('exporting', 'training', 'succeeded', 'failed')),
    -- The accepted labels counted since the baseline snapshot (the snapshot of the workflow's previous run; NULL: none).
    new_labels          integer NOT NULL,
    baseline_snapshot_id bigint REFERENCES snapshots (id),
    snapshot_id         bigint REFERENCES snapshots (id),
    run_id              bigint UNIQUE REFERENCES training_runs (id),
    -- The policy's tolerance when it fired, so a later policy change does not rewrite history.
    min_dice_improvement double precision NOT NULL,
    error               text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX retrain_triggers_workflow ON retrain_triggers (workflow_id, id DESC);
-- One open trigger per workflow: two workers (or a restarted one) checking at once never start two runs.
CREATE UNIQUE INDEX retrain_triggers_one_open ON retrain_triggers (workflow_id) WHERE state IN ('exporting', 'training');

-- The retrain policy's decision on a model it trained, made in the transaction that registered the model.
CREATE TABLE model_comparisons (
    model_id            bigint PRIMARY KEY REFERENCES models (id),
    trigger_id          bigint NOT NULL UNIQUE REFERENCES retrain_triggers (id),
    active_model_id     bigint REFERENCES models (id),
    active_dice         double precision,
    new_dice            double precision,
    min_dice_improvement double precision NOT NULL,
    activated           boolean NOT NULL,
    reason              text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE VIEW retrain_overview AS
SELECT t.id AS trigger,
       w.name AS workflow,
       t.state,
       t.new_labels,
       t.baseline_snapshot_id AS baseline_snapshot,
       t.snapshot_id AS snapshot,
       t.run_id AS run,
       c.model_id AS model,
       c.active_model_id AS compared_with,
       c.active_dice,
       c.new_dice,
       c.min_dice_improvement,
       c.activated,
       coalesce(c.reason, t.error) AS reason,
       t.created_at,
       t.finished_at
FROM retrain_triggers t
JOIN workflows w ON w.id = t.workflow_id
LEFT JOIN model_comparisons c ON c.trigger_id = t.id;
