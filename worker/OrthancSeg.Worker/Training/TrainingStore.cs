using Npgsql;
using NpgsqlTypes;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Training;

/// <summary>A training run as stored.</summary>
internal sealed record TrainingRunRecord(
    long Id,
    long WorkflowId,
    string Workflow,
    long SnapshotId,
    string Configuration,
    string Trainer,
    string Plans,
    string? Planner,
    IReadOnlyList<string> Folds,
    string Backend,
    int Gpus,
    int Cpus,
    long MemoryMiB,
    long TimeLimitSeconds,
    string? Partition,
    string State,
    string? Error,
    DateTimeOffset CreatedAt,
    DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt,
    long? ModelId,
    long? TriggerId)
{
    public bool IsActive => State is TrainingStore.Queued or TrainingStore.Running;

    public TimeSpan TimeLimit => TimeSpan.FromSeconds(TimeLimitSeconds);
}

/// <summary>One step of a run: its preprocessing, or one fold.</summary>
internal sealed record TrainingStepRecord(
    long Id,
    long RunId,
    string Kind,
    string Fold,
    long? JobId,
    string? BackendJobId,
    string? Host,
    string? GpusGiven,
    string? RunDirectory,
    string? LogPath,
    int? ExitCode,
    string State,
    string? Error,
    DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt)
{
    public bool IsFinished => State is TrainingStore.Succeeded or TrainingStore.Failed or TrainingStore.Cancelled;

    /// <summary>"preprocess" or "fold-N": names its job key, its run folder and its Slurm job.</summary>
    public string Name => Kind == TrainingStore.Preprocess ? Kind : $"fold-{Fold}";
}

/// <summary>What StartTraining asks for, validated.</summary>
internal sealed record TrainingRunSpec(
    long WorkflowId,
    long SnapshotId,
    string Configuration,
    string Trainer,
    string Plans,
    string? Planner,
    IReadOnlyList<string> Folds,
    string Backend,
    int Gpus,
    int Cpus,
    long MemoryMiB,
    long TimeLimitSeconds,
    string? Partition);

/// <summary>A registered model.</summary>
internal sealed record ModelRecord(
    long Id,
    long WorkflowId,
    string Workflow,
    long RunId,
    long SnapshotId,
    string Location,
    string Configuration,
    string Trainer,
    string Plans,
    IReadOnlyList<string> Folds,
    double? MeanDice,
    string LabelDiceJson,
    long TrainingSeconds,
    bool Active,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ActivatedAt);

/// <summary>What the last fold publishes with its success: the model and its metrics.</summary>
internal sealed record ModelSpec(string Location, double? MeanDice, string LabelDiceJson);

/// <summary>
/// Training runs, their steps and the models they register, in PostgreSQL. The steps follow their jobs: a step is queued until its
/// process or Slurm job starts, and its end is recorded by its handler (success fenced by the job's lease).
/// </summary>
internal sealed class TrainingStore(NpgsqlDataSource dataSource)
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
    public const string Preprocess = "preprocess";
    public const string FoldStep = "fold";

    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private const string SelectRun = """
        SELECT r.id, r.workflow_id, w.name, r.snapshot_id, r.configuration, r.trainer, r.plans, r.planner, r.folds, r.backend, r.gpus, r.cpus,
               r.memory_mib, r.time_limit_seconds, r.partition, r.state, r.error, r.created_at, r.started_at, r.finished_at,
               (SELECT m.id FROM models m WHERE m.run_id = r.id), (SELECT t.id FROM retrain_triggers t WHERE t.run_id = r.id)
        FROM training_runs r
        JOIN workflows w ON w.id = r.workflow_id
        """;

    private const string SelectStep = """
        SELECT id, run_id, kind, fold, job_id, backend_job_id, host, gpus_given, run_directory, log_path, exit_code, state, error, started_at, finished_at
        FROM training_steps
        """;

    private const string SelectModel = """
        SELECT m.id, m.workflow_id, w.name, m.run_id, m.snapshot_id, m.location, m.configuration, m.trainer, m.plans, m.folds, m.mean_dice,
               m.label_dice::text, m.training_seconds, m.active, m.created_at, m.activated_at
        FROM models m
        JOIN workflows w ON w.id = m.workflow_id
        """;

    /// <summary>
    /// Creates the run and its steps (preprocessing, then one per fold), all queued, linked to the retrain trigger that asked for it if any.
    /// FailedPrecondition when a run of the workflow is active, or when the trigger already started a run.
    /// </summary>
    public async Task<long> CreateRunAsync(TrainingRunSpec spec, long? triggerId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        long runId;
        await using (var insert = new NpgsqlCommand("""
            INSERT INTO training_runs (workflow_id, snapshot_id, configuration, trainer, plans, planner, folds, backend, gpus, cpus, memory_mib,
                                       time_limit_seconds, partition)
            VALUES (@workflow, @snapshot, @configuration, @trainer, @plans, @planner, @folds, @backend, @gpus, @cpus, @memory, @time, @partition)
            RETURNING id
            """, connection, transaction))
        {
            insert.Parameters.Add(new NpgsqlParameter<long>("workflow", spec.WorkflowId));
            insert.Parameters.Add(new NpgsqlParameter<long>("snapshot", spec.SnapshotId));
            insert.Parameters.Add(Text("configuration", spec.Configuration));
            insert.Parameters.Add(Text("trainer", spec.Trainer));
            insert.Parameters.Add(Text("plans", spec.Plans));
            insert.Parameters.Add(Text("planner", spec.Planner));
            insert.Parameters.Add(new NpgsqlParameter<string[]>("folds", [.. spec.Folds]));
            insert.Parameters.Add(Text("backend", spec.Backend));
            insert.Parameters.Add(new NpgsqlParameter<int>("gpus", spec.Gpus));
            insert.Parameters.Add(new NpgsqlParameter<int>("cpus", spec.Cpus));
            insert.Parameters.Add(new NpgsqlParameter<long>("memory", spec.MemoryMiB));
            insert.Parameters.Add(new NpgsqlParameter<long>("time", spec.TimeLimitSeconds));
            insert.Parameters.Add(Text("partition", spec.Partition));
            try
            {
                runId = (long)(await insert.ExecuteScalarAsync(cancellationToken))!;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && e.ConstraintName == "training_runs_one_active")
            {
                throw new FailedPreconditionException(
                    "A training run of this workflow is already queued or running (its steps share the dataset's nnUNet_preprocessed folder); "
                    + "wait for it or cancel it first");
            }
        }
        await using (var steps = new NpgsqlCommand("""
            INSERT INTO training_steps (run_id, kind, fold)
            SELECT @run, 'preprocess', ''
            UNION ALL
            SELECT @run, 'fold', f FROM unnest(@folds::text[]) AS f
            """, connection, transaction))
        {
            steps.Parameters.Add(new NpgsqlParameter<long>("run", runId));
            steps.Parameters.Add(new NpgsqlParameter<string[]>("folds", [.. spec.Folds]));
            await steps.ExecuteNonQueryAsync(cancellationToken);
        }
        if (triggerId is { } trigger && !await RetrainStore.LinkRunAsync(connection, transaction, trigger, runId, cancellationToken))
        {
            throw new FailedPreconditionException($"Retrain trigger {trigger} already started its run");
        }
        await transaction.CommitAsync(cancellationToken);
        Changed();
        return runId;
    }

    public async Task SetStepJobAsync(long stepId, long jobId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("UPDATE training_steps SET job_id = @job, updated_at = now() WHERE id = @id AND job_id IS NULL");
        command.Parameters.Add(new NpgsqlParameter<long>("id", stepId));
        command.Parameters.Add(new NpgsqlParameter<long>("job", jobId));
        await command.ExecuteNonQueryAsync(cancellationToken);
        Changed();
    }

    /// <summary>
    /// Records where a step is about to run (before its process or Slurm job exists), so that a worker that dies right after starting it
    /// finds it again.
    /// </summary>
    public async Task SetStepPlacementAsync(long stepId, string host, string gpusGiven, string runDirectory, string logPath, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE training_steps
            SET host = @host, gpus_given = @gpus, run_directory = @dir, log_path = @log, backend_job_id = NULL, exit_code = NULL, updated_at = now()
            WHERE id = @id
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", stepId));
        command.Parameters.Add(Text("host", host));
        command.Parameters.Add(Text("gpus", gpusGiven));
        command.Parameters.Add(Text("dir", runDirectory));
        command.Parameters.Add(Text("log", logPath));
        await command.ExecuteNonQueryAsync(cancellationToken);
        Changed();
    }

    /// <summary>Records the backend's id of a step (process group, Slurm job id); with <paramref name="running"/>, the step and its run are running.</summary>
    public async Task SetStepBackendJobAsync(long stepId, string backendJobId, bool running, string? host, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            WITH step AS (
                UPDATE training_steps
                SET backend_job_id = @backend,
                    host = coalesce(@host, host),
                    state = CASE WHEN @running AND state = 'queued' THEN 'running' ELSE state END,
                    started_at = CASE WHEN @running THEN coalesce(started_at, now()) ELSE started_at END,
                    updated_at = now()
                WHERE id = @id
                RETURNING run_id
            )
            UPDATE training_runs r
            SET state = 'running', started_at = coalesce(r.started_at, now()), updated_at = now()
            FROM step
            WHERE r.id = step.run_id AND @running AND r.state IN ('queued', 'running')
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", stepId));
        command.Parameters.Add(Text("backend", backendJobId));
        command.Parameters.Add(new NpgsqlParameter<bool>("running", running));
        command.Parameters.Add(Text("host", host));
        await command.ExecuteNonQueryAsync(cancellationToken);
        Changed();
    }

    /// <summary>
    /// A step failed for good: the step and its run are failed (the run's error names the step), and the job ids of the run's other
    /// unfinished steps are returned so the caller cancels them: a failed run frees its GPUs.
    /// </summary>
    public async Task<IReadOnlyList<long>> FailStepAsync(long stepId, int? exitCode, string error, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        long runId;
        string name;
        await using (var step = new NpgsqlCommand("""
            UPDATE training_steps
            SET state = 'failed', exit_code = @code, error = @error, finished_at = now(), updated_at = now()
            WHERE id = @id
            RETURNING run_id, CASE WHEN kind = 'preprocess' THEN 'preprocessing' ELSE 'fold ' || fold END
            """, connection, transaction))
        {
            step.Parameters.Add(new NpgsqlParameter<long>("id", stepId));
            step.Parameters.Add(new NpgsqlParameter("code", NpgsqlDbType.Integer) { Value = (object?)exitCode ?? DBNull.Value });
            step.Parameters.Add(Text("error", error));
            await using var reader = await step.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken))
            {
                throw new InvalidOperationException($"training step {stepId} is gone");
            }
            (runId, name) = (reader.GetInt64(0), reader.GetString(1));
        }
        await using (var run = new NpgsqlCommand("""
            UPDATE training_runs SET state = 'failed', error = @error, finished_at = now(), updated_at = now()
            WHERE id = @run AND state IN ('queued', 'running')
            """, connection, transaction))
        {
            run.Parameters.Add(new NpgsqlParameter<long>("run", runId));
            run.Parameters.Add(Text("error", $"{name} failed: {error}"));
            await run.ExecuteNonQueryAsync(cancellationToken);
        }
        var others = await UnfinishedJobsAsync(connection, transaction, runId, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        Changed();
        return others;
    }

    /// <summary>
    /// A step that ended cancelled (or was never run because its run ended). Its run becomes cancelled unless it already ended; when this
    /// call ended the run (a step's job cancelled on its own, `jobs cancel ID`), the job ids of the run's other unfinished steps are returned
    /// so the caller cancels them too.
    /// </summary>
    public async Task<IReadOnlyList<long>> CancelStepAsync(long stepId, string reason, int? exitCode, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        long? runId;
        await using (var command = new NpgsqlCommand("""
            WITH step AS (
                UPDATE training_steps
                SET state = 'cancelled', error = @reason, exit_code = coalesce(@code, exit_code), finished_at = now(), updated_at = now()
                WHERE id = @id AND state IN ('queued', 'running')
                RETURNING run_id
            )
            UPDATE training_runs r
            SET state = 'cancelled', error = coalesce(r.error, @reason), finished_at = now(), updated_at = now()
            FROM step
            WHERE r.id = step.run_id AND r.state IN ('queued', 'running')
            RETURNING r.id
            """, connection, transaction))
        {
            command.Parameters.Add(new NpgsqlParameter<long>("id", stepId));
            command.Parameters.Add(Text("reason", reason));
            command.Parameters.Add(new NpgsqlParameter("code", NpgsqlDbType.Integer) { Value = (object?)exitCode ?? DBNull.Value });
            runId = (long?)await command.ExecuteScalarAsync(cancellationToken);
        }
        var others = runId is { } ended ? await UnfinishedJobsAsync(connection, transaction, ended, cancellationToken) : [];
        await transaction.CommitAsync(cancellationToken);
        Changed();
        return others;
    }

    /// <summary>
    /// An admin cancels a run: it becomes cancelled at once (so no step starts any more), its steps without a job are cancelled, and the job
    /// ids of the others that have not ended are returned for the caller to cancel. FailedPrecondition when the run already ended.
    /// </summary>
    public async Task<IReadOnlyList<long>> CancelRunAsync(long runId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var run = new NpgsqlCommand("""
            UPDATE training_runs SET state = 'cancelled', error = 'cancelled by an admin', finished_at = now(), updated_at = now()
            WHERE id = @run AND state IN ('queued', 'running')
            RETURNING id
            """, connection, transaction))
        {
            run.Parameters.Add(new NpgsqlParameter<long>("run", runId));
            if (await run.ExecuteScalarAsync(cancellationToken) is null)
            {
                var existing = await FindRunAsync(runId, cancellationToken) ?? throw new NotFoundException($"There is no training run {runId}");
                throw new FailedPreconditionException($"Training run {runId} already ended {existing.State}");
            }
        }
        await using (var steps = new NpgsqlCommand("""
            UPDATE training_steps SET state = 'cancelled', error = 'cancelled by an admin before it was queued', finished_at = now(), updated_at = now()
            WHERE run_id = @run AND job_id IS NULL AND state = 'queued'
            """, connection, transaction))
        {
            steps.Parameters.Add(new NpgsqlParameter<long>("run", runId));
            await steps.ExecuteNonQueryAsync(cancellationToken);
        }
        var jobs = await UnfinishedJobsAsync(connection, transaction, runId, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        Changed();
        return jobs;
    }

    /// <summary>
    /// Publishes a step's success inside the handler's fenced transaction. When it is the run's last fold to succeed, the model is
    /// registered with <paramref name="model"/> (computed by the caller only then) and the run succeeds. Returns true when the run did.
    /// </summary>
    public async Task<bool> SucceedStepAsync(TrainingStepRecord step, int? exitCode, JobAttempt attempt, Func<ModelSpec> model,
        CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await attempt.FenceAsync(connection, transaction, cancellationToken);
        // The run row is locked first, so two folds finishing together see each other's success and exactly one registers the model.
        string? runState;
        await using (var lockRun = new NpgsqlCommand("SELECT state FROM training_runs WHERE id = @run FOR UPDATE", connection, transaction))
        {
            lockRun.Parameters.Add(new NpgsqlParameter<long>("run", step.RunId));
            runState = (string?)await lockRun.ExecuteScalarAsync(cancellationToken);
        }
        await using (var update = new NpgsqlCommand("""
            UPDATE training_steps SET state = 'succeeded', exit_code = @code, error = NULL, finished_at = now(), updated_at = now()
            WHERE id = @id
            """, connection, transaction))
        {
            update.Parameters.Add(new NpgsqlParameter<long>("id", step.Id));
            update.Parameters.Add(new NpgsqlParameter("code", NpgsqlDbType.Integer) { Value = (object?)exitCode ?? DBNull.Value });
            await update.ExecuteNonQueryAsync(cancellationToken);
        }
        var runSucceeded = false;
        if (step.Kind == FoldStep && runState is Queued or Running)
        {
            await using var remaining = new NpgsqlCommand(
                "SELECT count(*) FROM training_steps WHERE run_id = @run AND kind = 'fold' AND state <> 'succeeded'", connection, transaction);
            remaining.Parameters.Add(new NpgsqlParameter<long>("run", step.RunId));
            if ((long)(await remaining.ExecuteScalarAsync(cancellationToken))! == 0)
            {
                var spec = model();
                await using var register = new NpgsqlCommand("""
                    WITH run AS (
                        UPDATE training_runs SET state = 'succeeded', error = NULL, finished_at = now(), updated_at = now()
                        WHERE id = @run
                        RETURNING id, workflow_id, snapshot_id, configuration, trainer, plans, folds, started_at, finished_at
                    )
                    INSERT INTO models (workflow_id, run_id, snapshot_id, location, configuration, trainer, plans, folds, mean_dice, label_dice,
                                        training_seconds)
                    SELECT workflow_id, id, snapshot_id, @location, configuration, trainer, plans, folds, @mean, @labels::jsonb,
                           ceil(extract(epoch FROM finished_at - coalesce(started_at, finished_at)))::bigint
                    FROM run
                    RETURNING id
                    """, connection, transaction);
                register.Parameters.Add(new NpgsqlParameter<long>("run", step.RunId));
                register.Parameters.Add(Text("location", spec.Location));
                register.Parameters.Add(new NpgsqlParameter("mean", NpgsqlDbType.Double) { Value = (object?)spec.MeanDice ?? DBNull.Value });
                register.Parameters.Add(Text("labels", spec.LabelDiceJson));
                var modelId = (long)(await register.ExecuteScalarAsync(cancellationToken))!;
                await RetrainStore.CompareAsync(connection, transaction, step.RunId, modelId, cancellationToken);
                runSucceeded = true;
            }
        }
        await attempt.CompleteAsync(connection, transaction, cancellationToken);
        await transaction.CommitAsync(CancellationToken.None);
        Changed();
        return runSucceeded;
    }

    public async Task<TrainingRunRecord> GetRunAsync(long runId, CancellationToken cancellationToken) =>
        await FindRunAsync(runId, cancellationToken) ?? throw new NotFoundException($"There is no training run {runId}");

    public async Task<TrainingRunRecord?> FindRunAsync(long runId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectRun + " WHERE r.id = @id");
        command.Parameters.Add(new NpgsqlParameter<long>("id", runId));
        return (await ReadRunsAsync(command, cancellationToken)) is [var found, ..] ? found : null;
    }

    /// <summary>Newest first, keyset-paginated on id.</summary>
    public async Task<IReadOnlyList<TrainingRunRecord>> ListRunsAsync(string? workflow, long? beforeId, int limit, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectRun + """
             WHERE (@workflow::text IS NULL OR w.name = @workflow) AND (@before::bigint IS NULL OR r.id < @before)
            ORDER BY r.id DESC
            LIMIT @limit
            """);
        command.Parameters.Add(Text("workflow", workflow));
        command.Parameters.Add(new NpgsqlParameter("before", NpgsqlDbType.Bigint) { Value = (object?)beforeId ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<int>("limit", limit));
        return await ReadRunsAsync(command, cancellationToken);
    }

    /// <summary>Preprocessing first, then the folds in order.</summary>
    public async Task<IReadOnlyList<TrainingStepRecord>> StepsAsync(long runId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectStep + " WHERE run_id = @run ORDER BY kind = 'fold', fold");
        command.Parameters.Add(new NpgsqlParameter<long>("run", runId));
        return await ReadStepsAsync(command, cancellationToken);
    }

    public async Task<TrainingStepRecord> GetStepAsync(long stepId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectStep + " WHERE id = @id");
        command.Parameters.Add(new NpgsqlParameter<long>("id", stepId));
        return (await ReadStepsAsync(command, cancellationToken)) is [var found, ..] ? found
            : throw new NotFoundException($"There is no training step {stepId}");
    }

    public async Task<ModelRecord> GetModelAsync(long modelId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectModel + " WHERE m.id = @id");
        command.Parameters.Add(new NpgsqlParameter<long>("id", modelId));
        return (await ReadModelsAsync(command, cancellationToken)) is [var found, ..] ? found : throw new NotFoundException($"There is no model {modelId}");
    }

    /// <summary>Newest first, keyset-paginated on id.</summary>
    public async Task<IReadOnlyList<ModelRecord>> ListModelsAsync(string? workflow, long? beforeId, int limit, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectModel + """
             WHERE (@workflow::text IS NULL OR w.name = @workflow) AND (@before::bigint IS NULL OR m.id < @before)
            ORDER BY m.id DESC
            LIMIT @limit
            """);
        command.Parameters.Add(Text("workflow", workflow));
        command.Parameters.Add(new NpgsqlParameter("before", NpgsqlDbType.Bigint) { Value = (object?)beforeId ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<int>("limit", limit));
        return await ReadModelsAsync(command, cancellationToken);
    }

    /// <summary>Makes the model its workflow's only active one, in one transaction (the partial unique index allows one).</summary>
    public async Task<ModelRecord> ActivateModelAsync(long modelId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var command = new NpgsqlCommand("""
            WITH target AS (SELECT id, workflow_id FROM models WHERE id = @id FOR UPDATE),
            others AS (
                UPDATE models m SET active = false FROM target WHERE m.workflow_id = target.workflow_id AND m.id <> target.id AND m.active
                RETURNING m.id
            )
            SELECT count(*) FROM target
            """, connection, transaction))
        {
            command.Parameters.Add(new NpgsqlParameter<long>("id", modelId));
            if ((long)(await command.ExecuteScalarAsync(cancellationToken))! == 0)
            {
                throw new NotFoundException($"There is no model {modelId}");
            }
        }
        await using (var activate = new NpgsqlCommand(
            "UPDATE models SET active = true, activated_at = CASE WHEN active THEN activated_at ELSE now() END WHERE id = @id", connection, transaction))
        {
            activate.Parameters.Add(new NpgsqlParameter<long>("id", modelId));
            await activate.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return await GetModelAsync(modelId, cancellationToken);
    }

    /// <summary>Returns when this process changes a run or step, or after <paramref name="timeout"/>; watchers poll the database anyway.</summary>
    public async Task WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            await Volatile.Read(ref _changed).Task.WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            // Nothing changed here.
        }
    }

    private void Changed() => Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private static async Task<IReadOnlyList<long>> UnfinishedJobsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long runId,
        CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            SELECT s.job_id FROM training_steps s JOIN jobs j ON j.id = s.job_id
            WHERE s.run_id = @run AND s.state IN ('queued', 'running') AND j.state NOT IN ('succeeded', 'cancelled')
            """, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter<long>("run", runId));
        var result = new List<long>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(reader.GetInt64(0));
        }
        return result;
    }

    private static async Task<IReadOnlyList<TrainingRunRecord>> ReadRunsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var result = new List<TrainingRunRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new TrainingRunRecord(reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.GetInt64(3), reader.GetString(4),
                reader.GetString(5), reader.GetString(6), NullableText(reader, 7), reader.GetFieldValue<string[]>(8), reader.GetString(9),
                reader.GetInt32(10), reader.GetInt32(11), reader.GetInt64(12), reader.GetInt64(13), NullableText(reader, 14), reader.GetString(15),
                NullableText(reader, 16), reader.GetFieldValue<DateTimeOffset>(17), NullableTime(reader, 18), NullableTime(reader, 19),
                reader.IsDBNull(20) ? null : reader.GetInt64(20), reader.IsDBNull(21) ? null : reader.GetInt64(21)));
        }
        return result;
    }

    private static async Task<IReadOnlyList<TrainingStepRecord>> ReadStepsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var result = new List<TrainingStepRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new TrainingStepRecord(reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetInt64(4), NullableText(reader, 5), NullableText(reader, 6), NullableText(reader, 7),
                NullableText(reader, 8), NullableText(reader, 9), reader.IsDBNull(10) ? null : reader.GetInt32(10), reader.GetString(11),
                NullableText(reader, 12), NullableTime(reader, 13), NullableTime(reader, 14)));
        }
        return result;
    }

    private static async Task<IReadOnlyList<ModelRecord>> ReadModelsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var result = new List<ModelRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new ModelRecord(reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4),
                reader.GetString(5), reader.GetString(6), reader.GetString(7), reader.GetString(8), reader.GetFieldValue<string[]>(9),
                reader.IsDBNull(10) ? null : reader.GetDouble(10), reader.GetString(11), reader.GetInt64(12), reader.GetBoolean(13),
                reader.GetFieldValue<DateTimeOffset>(14), NullableTime(reader, 15)));
        }
        return result;
    }

    private static string? NullableText(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    private static DateTimeOffset? NullableTime(NpgsqlDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? null : reader.GetFieldValue<DateTimeOffset>(ordinal);

    private static NpgsqlParameter Text(string name, string? value) => new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };
}
