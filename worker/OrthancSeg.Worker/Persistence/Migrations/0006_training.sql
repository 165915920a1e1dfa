-- Training dispatch (issue 9, docs/training.md): a run trains one snapshot with nnU-Net, as one preprocessing step and one
-- step per fold, each a job of the job engine; when every fold succeeds the run registers a model.

CREATE TABLE training_runs (
    -- The run number people and the CLI use ("training show 3").
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id         bigint NOT NULL REFERENCES workflows (id),
    snapshot_id         bigint NOT NULL REFERENCES snapshots (id),
    configuration       text NOT NULL,
    trainer             text NOT NULL,
    plans               text NOT NULL,
    -- The planner given to plan_and_preprocess (-pl); NULL: the one that writes the plans, or nnU-Net's default.
    planner             text,
    -- The folds to train, as nnU-Net names them: '0'..'4' or 'all'.
    folds               text[] NOT NULL CHECK (cardinality(folds) > 0),
    backend             text NOT NULL CHECK (backend IN ('local', 'slurm')),
    -- The resources each step asks for.
    gpus                integer NOT NULL CHECK (gpus >= 0),
    cpus                integer NOT NULL CHECK (cpus >= 1),
    memory_mib          bigint NOT NULL CHECK (memory_mib >= 0),
    time_limit_seconds  bigint NOT NULL CHECK (time_limit_seconds >= 1),
    partition           text,
    --   queued     no step has started; running: a step runs or waits for resources;
    --   succeeded  every fold succeeded and the model is registered; failed: a step failed (error says which and why);
    --   cancelled  an admin cancelled it
    state               text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    error               text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX training_runs_workflow ON training_runs (workflow_id, id DESC);
-- One run of a workflow at a time: its steps write the same nnUNet_preprocessed/DatasetNNN_Name folder (preprocessing runs
-- with --clean), so two runs of one dataset id would corrupt each other's training data.
CREATE UNIQUE INDEX training_runs_one_active ON training_runs (workflow_id) WHERE state IN ('queued', 'running');

CREATE TABLE training_steps (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id              bigint NOT NULL REFERENCES training_runs (id) ON DELETE CASCADE,
    -- 'preprocess' (plan_and_preprocess) or 'fold' (nnUNetv2_train of one fold).
    kind                text NOT NULL CHECK (kind IN ('preprocess', 'fold')),
    -- The fold a 'fold' step trains; '' for preprocessing.
    fold                text NOT NULL DEFAULT '',
    job_id              bigint REFERENCES jobs (id),
    -- The process group id (local) or the Slurm job id.
    backend_job_id      text,
    host                text,
    -- The CUDA_VISIBLE_DEVICES the step was given (local), or the GPU count asked of Slurm; '' for CPU.
    gpus_given          text,
    -- The local run folder (pid, exit files) a restarted worker re-attaches from.
    run_directory       text,
    log_path            text,
    exit_code           integer,
    state               text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    error               text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, kind, fold)
);

CREATE TABLE models (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id         bigint NOT NULL REFERENCES workflows (id),
    -- Lineage: the run that trained it and the snapshot it was trained on (whose snapshot_cases name every label).
    run_id              bigint NOT NULL UNIQUE REFERENCES training_runs (id),
    snapshot_id         bigint NOT NULL REFERENCES snapshots (id),
    -- $nnUNet_results/DatasetNNN_Name/Trainer__Plans__configuration
    location            text NOT NULL,
    configuration       text NOT NULL,
    trainer             text NOT NULL,
    plans               text NOT NULL,
    folds               text[] NOT NULL,
    -- From each fold's validation/summary.json, averaged over the folds: foreground_mean Dice, and Dice per label value.
    mean_dice           double precision,
    -- {"1": 0.91, "2": 0.73}
    label_dice          jsonb NOT NULL DEFAULT '{}',
    -- From the first step's start to the last fold's end.
    training_seconds    bigint NOT NULL,
    active              boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    activated_at        timestamptz
);
CREATE INDEX models_workflow ON models (workflow_id, id DESC);
-- The model inference uses: at most one per workflow.
CREATE UNIQUE INDEX models_one_active ON models (workflow_id) WHERE active;

CREATE VIEW training_overview AS
SELECT r.id AS run,
       w.name AS workflow,
       r.snapshot_id AS snapshot,
       r.state,
       r.backend,
       r.configuration,
       r.trainer,
       r.plans,
       array_to_string(r.folds, ',') AS folds,
       r.gpus,
       r.cpus,
       r.memory_mib,
       r.time_limit_seconds,
       r.partition,
       (SELECT count(*) FROM training_steps s WHERE s.run_id = r.id AND s.state = 'succeeded') AS steps_succeeded,
       (SELECT count(*) FROM training_steps s WHERE s.run_id = r.id) AS steps,
       r.error,
       r.created_at,
       r.started_at,
       r.finished_at
FROM training_runs r
JOIN workflows w ON w.id = r.workflow_id;

CREATE VIEW training_step_overview AS
SELECT s.run_id AS run,
       s.kind,
       s.fold,
       s.state,
       s.job_id AS job,
       s.backend_job_id,
       s.host,
       s.gpus_given,
       s.exit_code,
       s.log_path,
       s.error,
       s.started_at,
       s.finished_at
FROM training_steps s;

CREATE VIEW model_overview AS
SELECT m.id AS model,
       w.name AS workflow,
       m.active,
       m.run_id AS run,
       m.snapshot_id AS snapshot,
       m.configuration,
       m.trainer,
       m.plans,
       array_to_string(m.folds, ',') AS folds,
       m.mean_dice,
       m.label_dice,
       m.training_seconds,
       m.location,
       m.created_at,
       m.activated_at
FROM models m
JOIN workflows w ON w.id = m.workflow_id;
