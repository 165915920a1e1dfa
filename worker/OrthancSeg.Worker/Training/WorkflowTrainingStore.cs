using Npgsql;
using NpgsqlTypes;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Worker.Training;

/// <summary>A workflow's training defaults (null: none set) and its retrain policy (disabled when never set).</summary>
internal sealed record WorkflowTrainingSettings(TrainingDefaults? Defaults, RetrainPolicy Policy);

/// <summary>A workflow whose retrain policy is on.</summary>
internal sealed record RetrainingWorkflow(long WorkflowId, string Workflow, RetrainPolicy Policy);

/// <summary>The workflow_training table: each workflow's training defaults and retrain policy, set through CreateWorkflow/UpdateWorkflow.</summary>
internal sealed class WorkflowTrainingStore(NpgsqlDataSource dataSource)
{
    private const string SelectSettings = """
        SELECT t.workflow_id, w.name, t.configuration, t.folds, t.trainer, t.plans, t.planner, t.backend, t.gpus, t.cpus, t.memory_mib,
               t.time_limit_seconds, t.partition, t.retrain_enabled, t.retrain_min_new_labels, t.retrain_min_interval_seconds,
               t.retrain_min_dice_improvement
        FROM workflow_training t
        JOIN workflows w ON w.id = t.workflow_id
        """;

    public async Task<WorkflowTrainingSettings> GetAsync(long workflowId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectSettings + " WHERE t.workflow_id = @id");
        command.Parameters.Add(new NpgsqlParameter<long>("id", workflowId));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader).Settings : new WorkflowTrainingSettings(null, new RetrainPolicy());
    }

    /// <summary>The workflows whose retrain policy is on, for the periodic check.</summary>
    public async Task<IReadOnlyList<RetrainingWorkflow>> RetrainingAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectSettings + " WHERE t.retrain_enabled ORDER BY t.workflow_id");
        var result = new List<RetrainingWorkflow>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var (id, name, settings) = Read(reader);
            result.Add(new RetrainingWorkflow(id, name, settings.Policy));
        }
        return result;
    }

    /// <summary>Replaces the defaults and/or the policy (null: left as they are). Callers validate with <see cref="TrainingDefaultsRules.Validate"/>.</summary>
    public async Task SetAsync(long workflowId, TrainingDefaults? defaults, RetrainPolicy? policy, CancellationToken cancellationToken)
    {
        if (defaults is null && policy is null)
        {
            return;
        }
        var resources = defaults?.Resources ?? new TrainingResources();
        await using var command = dataSource.CreateCommand("""
            INSERT INTO workflow_training AS t (workflow_id, configuration, folds, trainer, plans, planner, backend, gpus, cpus, memory_mib,
                                                time_limit_seconds, partition, retrain_enabled, retrain_min_new_labels,
                                                retrain_min_interval_seconds, retrain_min_dice_improvement)
            VALUES (@id, @configuration, @folds, @trainer, @plans, @planner, @backend, @gpus, @cpus, @memory, @time, @partition,
                    coalesce(@enabled, false), coalesce(@min_labels, 1), coalesce(@interval, 0), coalesce(@improvement, 0))
            ON CONFLICT (workflow_id) DO UPDATE SET
                configuration = CASE WHEN @set_defaults THEN excluded.configuration ELSE t.configuration END,
                folds = CASE WHEN @set_defaults THEN excluded.folds ELSE t.folds END,
                trainer = CASE WHEN @set_defaults THEN excluded.trainer ELSE t.trainer END,
                plans = CASE WHEN @set_defaults THEN excluded.plans ELSE t.plans END,
                planner = CASE WHEN @set_defaults THEN excluded.planner ELSE t.planner END,
                backend = CASE WHEN @set_defaults THEN excluded.backend ELSE t.backend END,
                gpus = CASE WHEN @set_defaults THEN excluded.gpus ELSE t.gpus END,
                cpus = CASE WHEN @set_defaults THEN excluded.cpus ELSE t.cpus END,
                memory_mib = CASE WHEN @set_defaults THEN excluded.memory_mib ELSE t.memory_mib END,
                time_limit_seconds = CASE WHEN @set_defaults THEN excluded.time_limit_seconds ELSE t.time_limit_seconds END,
                partition = CASE WHEN @set_defaults THEN excluded.partition ELSE t.partition END,
                retrain_enabled = coalesce(@enabled, t.retrain_enabled),
                retrain_min_new_labels = coalesce(@min_labels, t.retrain_min_new_labels),
                retrain_min_interval_seconds = coalesce(@interval, t.retrain_min_interval_seconds),
                retrain_min_dice_improvement = coalesce(@improvement, t.retrain_min_dice_improvement),
                updated_at = now()
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", workflowId));
        command.Parameters.Add(new NpgsqlParameter<bool>("set_defaults", defaults is not null));
        command.Parameters.Add(Text("configuration", defaults?.Configuration));
        command.Parameters.Add(new NpgsqlParameter("folds", NpgsqlDbType.Array | NpgsqlDbType.Text)
        {
            Value = defaults is { Folds.Count: > 0 } ? defaults.Folds.ToArray() : DBNull.Value,
        });
        command.Parameters.Add(Text("trainer", defaults?.Trainer));
        command.Parameters.Add(Text("plans", defaults?.Plans));
        command.Parameters.Add(Text("planner", defaults?.Planner));
        command.Parameters.Add(Text("backend", defaults?.Backend switch
        {
            TrainingBackend.Local => "local",
            TrainingBackend.Slurm => "slurm",
            _ => null,
        }));
        command.Parameters.Add(Number("gpus", NpgsqlDbType.Integer, resources.HasGpus ? resources.Gpus : (int?)null));
        command.Parameters.Add(Number("cpus", NpgsqlDbType.Integer, resources.Cpus > 0 ? resources.Cpus : (int?)null));
        command.Parameters.Add(Number("memory", NpgsqlDbType.Bigint, resources.MemoryMib > 0 ? resources.MemoryMib : (long?)null));
        command.Parameters.Add(Number("time", NpgsqlDbType.Bigint, resources.TimeLimitSeconds > 0 ? resources.TimeLimitSeconds : (long?)null));
        command.Parameters.Add(Text("partition", resources.Partition));
        command.Parameters.Add(new NpgsqlParameter("enabled", NpgsqlDbType.Boolean) { Value = policy is null ? DBNull.Value : policy.Enabled });
        command.Parameters.Add(Number("min_labels", NpgsqlDbType.Integer, policy is null ? null : Math.Max(1, policy.MinNewLabels)));
        command.Parameters.Add(Number("interval", NpgsqlDbType.Bigint, policy?.MinIntervalSeconds));
        command.Parameters.Add(new NpgsqlParameter("improvement", NpgsqlDbType.Double) { Value = policy is null ? DBNull.Value : policy.MinDiceImprovement });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static (long Id, string Name, WorkflowTrainingSettings Settings) Read(NpgsqlDataReader reader)
    {
        var defaults = new TrainingDefaults
        {
            Configuration = Nullable(reader, 2) ?? "",
            Trainer = Nullable(reader, 4) ?? "",
            Plans = Nullable(reader, 5) ?? "",
            Planner = Nullable(reader, 6) ?? "",
            Backend = Nullable(reader, 7) switch
            {
                "local" => TrainingBackend.Local,
                "slurm" => TrainingBackend.Slurm,
                _ => TrainingBackend.Unspecified,
            },
            Resources = new TrainingResources
            {
                Cpus = reader.IsDBNull(9) ? 0 : reader.GetInt32(9),
                MemoryMib = reader.IsDBNull(10) ? 0 : reader.GetInt64(10),
                TimeLimitSeconds = reader.IsDBNull(11) ? 0 : reader.GetInt64(11),
                Partition = Nullable(reader, 12) ?? "",
            },
        };
        if (!reader.IsDBNull(3))
        {
            defaults.Folds.AddRange(reader.GetFieldValue<string[]>(3));
        }
        if (!reader.IsDBNull(8))
        {
            defaults.Resources.Gpus = reader.GetInt32(8);
        }
        var policy = new RetrainPolicy
        {
            Enabled = reader.GetBoolean(13),
            MinNewLabels = reader.GetInt32(14),
            MinIntervalSeconds = reader.GetInt64(15),
            MinDiceImprovement = reader.GetDouble(16),
        };
        return (reader.GetInt64(0), reader.GetString(1), new WorkflowTrainingSettings(defaults, policy));
    }

    private static string? Nullable(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    private static NpgsqlParameter Text(string name, string? value) =>
        new(name, NpgsqlDbType.Text) { Value = string.IsNullOrEmpty(value) ? DBNull.Value : value };

    private static NpgsqlParameter Number(string name, NpgsqlDbType type, object? value) => new(name, type) { Value = value ?? DBNull.Value };
}
