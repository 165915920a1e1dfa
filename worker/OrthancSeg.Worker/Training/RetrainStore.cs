using Google.Protobuf.WellKnownTypes;
using Npgsql;
using NpgsqlTypes;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Worker.Training;

/// <summary>One firing of a workflow's retrain policy.</summary>
internal sealed record RetrainTrigger(long Id, long WorkflowId, string State, int NewLabels, long? SnapshotId, long? RunId, string? Error,
    DateTimeOffset CreatedAt);

/// <summary>Accepted labels since the snapshot of the workflow's last run (<paramref name="BaselineSnapshotId"/>; null: it never trained).</summary>
internal sealed record NewLabels(long Count, long? BaselineSnapshotId);

/// <summary>
/// The retrain policy's records: its triggers (one open per workflow, enforced by a unique index, so two workers never start two runs
/// for one trigger) and its comparisons of a new model with the active one, made in the transaction that registers the model.
/// </summary>
internal sealed class RetrainStore(NpgsqlDataSource dataSource)
{
    public const string Exporting = "exporting";
    public const string Training = "training";

    private const string SelectTrigger = """
        SELECT id, workflow_id, state, new_labels, snapshot_id, run_id, error, created_at FROM retrain_triggers
        """;

    private const string SelectComparison = """
        SELECT model_id, active_model_id, active_dice, new_dice, min_dice_improvement, activated, reason, created_at FROM model_comparisons
        """;

    public async Task<NewLabels> NewLabelsAsync(long workflowId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            WITH baseline AS (
                SELECT s.id, s.created_at FROM training_runs r JOIN snapshots s ON s.id = r.snapshot_id
                WHERE r.workflow_id = @workflow ORDER BY r.id DESC LIMIT 1
            )
            SELECT (SELECT count(*) FROM labels l JOIN cases c ON c.id = l.case_id
                    WHERE c.workflow_id = @workflow AND l.verdict = 'accepted' AND c.excluded_at IS NULL
                      AND l.created_at > coalesce((SELECT created_at FROM baseline), '-infinity')),
                   (SELECT id FROM baseline)
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("workflow", workflowId));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return new NewLabels(reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetInt64(1));
    }

    public async Task<RetrainTrigger?> LastTriggerAsync(long workflowId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectTrigger + " WHERE workflow_id = @workflow ORDER BY id DESC LIMIT 1");
        command.Parameters.Add(new NpgsqlParameter<long>("workflow", workflowId));
        return await ReadTriggerAsync(command, cancellationToken);
    }

    /// <summary>Opens a trigger; null when the workflow already has an open one (another worker's check got there first).</summary>
    public async Task<RetrainTrigger?> OpenTriggerAsync(long workflowId, NewLabels labels, double minDiceImprovement, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO retrain_triggers (workflow_id, new_labels, baseline_snapshot_id, min_dice_improvement)
            VALUES (@workflow, @labels, @baseline, @improvement)
            ON CONFLICT (workflow_id) WHERE state IN ('exporting', 'training') DO NOTHING
            RETURNING id, workflow_id, state, new_labels, snapshot_id, run_id, error, created_at
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("workflow", workflowId));
        command.Parameters.Add(new NpgsqlParameter<int>("labels", (int)Math.Min(int.MaxValue, labels.Count)));
        command.Parameters.Add(new NpgsqlParameter("baseline", NpgsqlDbType.Bigint) { Value = (object?)labels.BaselineSnapshotId ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<double>("improvement", minDiceImprovement));
        return await ReadTriggerAsync(command, cancellationToken);
    }

    /// <summary>Records the trigger's export, unless another check recorded one first; returns whether this one did.</summary>
    public async Task<bool> SetSnapshotAsync(long triggerId, long snapshotId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE retrain_triggers SET snapshot_id = @snapshot, updated_at = now() WHERE id = @id AND snapshot_id IS NULL AND state = 'exporting'
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", triggerId));
        command.Parameters.Add(new NpgsqlParameter<long>("snapshot", snapshotId));
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    /// <summary>Closes the trigger as failed if it is still in <paramref name="state"/> (another check may have moved it on meanwhile).</summary>
    public async Task FailAsync(long triggerId, string state, string error, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE retrain_triggers SET state = 'failed', error = @error, finished_at = now(), updated_at = now()
            WHERE id = @id AND state = @state
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", triggerId));
        command.Parameters.Add(new NpgsqlParameter<string>("state", state));
        command.Parameters.Add(new NpgsqlParameter<string>("error", error));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Links a new run to its trigger in the run's own transaction; false when the trigger already has a run or is closed.</summary>
    public static async Task<bool> LinkRunAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long triggerId, long runId,
        CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            UPDATE retrain_triggers SET run_id = @run, state = 'training', updated_at = now()
            WHERE id = @id AND state = 'exporting' AND run_id IS NULL
            """, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter<long>("id", triggerId));
        command.Parameters.Add(new NpgsqlParameter<long>("run", runId));
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    /// <summary>
    /// In the transaction that registers <paramref name="modelId"/> for <paramref name="runId"/>: when the run was started by the retrain
    /// policy, compares the model with the workflow's active one, activates it when it is not worse than the policy allows, records the
    /// comparison and closes the trigger. Nothing for a run started by hand.
    /// </summary>
    public static async Task CompareAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long runId, long modelId,
        CancellationToken cancellationToken)
    {
        long triggerId;
        double tolerance;
        await using (var trigger = new NpgsqlCommand("SELECT id, min_dice_improvement FROM retrain_triggers WHERE run_id = @run FOR UPDATE",
            connection, transaction))
        {
            trigger.Parameters.Add(new NpgsqlParameter<long>("run", runId));
            await using var reader = await trigger.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken))
            {
                return;
            }
            (triggerId, tolerance) = (reader.GetInt64(0), reader.GetDouble(1));
        }
        double? newDice;
        long? activeId = null;
        double? activeDice = null;
        await using (var models = new NpgsqlCommand("""
            SELECT m.mean_dice, a.id, a.mean_dice
            FROM models m
            LEFT JOIN models a ON a.workflow_id = m.workflow_id AND a.active AND a.id <> m.id
            WHERE m.id = @model
            FOR UPDATE OF m
            """, connection, transaction))
        {
            models.Parameters.Add(new NpgsqlParameter<long>("model", modelId));
            await using var reader = await models.ExecuteReaderAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            newDice = reader.IsDBNull(0) ? null : reader.GetDouble(0);
            if (!reader.IsDBNull(1))
            {
                activeId = reader.GetInt64(1);
                activeDice = reader.IsDBNull(2) ? null : reader.GetDouble(2);
            }
        }
        var (activate, reason) = Decide(newDice, activeId, activeDice, tolerance);
        await using (var record = new NpgsqlCommand("""
            INSERT INTO model_comparisons (model_id, trigger_id, active_model_id, active_dice, new_dice, min_dice_improvement, activated, reason)
            VALUES (@model, @trigger, @active, @active_dice, @new_dice, @tolerance, @activated, @reason);
            UPDATE retrain_triggers SET state = 'succeeded', finished_at = now(), updated_at = now() WHERE id = @trigger;
            """, connection, transaction))
        {
            record.Parameters.Add(new NpgsqlParameter<long>("model", modelId));
            record.Parameters.Add(new NpgsqlParameter<long>("trigger", triggerId));
            record.Parameters.Add(new NpgsqlParameter("active", NpgsqlDbType.Bigint) { Value = (object?)activeId ?? DBNull.Value });
            record.Parameters.Add(new NpgsqlParameter("active_dice", NpgsqlDbType.Double) { Value = (object?)activeDice ?? DBNull.Value });
            record.Parameters.Add(new NpgsqlParameter("new_dice", NpgsqlDbType.Double) { Value = (object?)newDice ?? DBNull.Value });
            record.Parameters.Add(new NpgsqlParameter<double>("tolerance", tolerance));
            record.Parameters.Add(new NpgsqlParameter<bool>("activated", activate));
            record.Parameters.Add(new NpgsqlParameter<string>("reason", reason));
            await record.ExecuteNonQueryAsync(cancellationToken);
        }
        if (activate)
        {
            // The old active model first: the partial unique index allows one active model per workflow.
            await using var swap = new NpgsqlCommand("""
                UPDATE models SET active = false WHERE workflow_id = (SELECT workflow_id FROM models WHERE id = @model) AND active AND id <> @model;
                UPDATE models SET active = true, activated_at = now() WHERE id = @model;
                """, connection, transaction);
            swap.Parameters.Add(new NpgsqlParameter<long>("model", modelId));
            await swap.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    /// <summary>The policy's rule: the new model becomes active when there is no active model to beat, or when its mean Dice is at least the active one's plus the tolerance.</summary>
    public static (bool Activate, string Reason) Decide(double? newDice, long? activeId, double? activeDice, double minDiceImprovement)
    {
        if (newDice is not { } fresh)
        {
            return (false, "the new model has no validation Dice to compare");
        }
        if (activeId is not { } active)
        {
            return (true, "no model was active");
        }
        if (activeDice is not { } current)
        {
            return (true, $"the active model {active} has no validation Dice");
        }
        var difference = fresh - current;
        // A tolerance written as 0 means "not worse": Dice values equal up to rounding count as equal.
        var activate = difference >= minDiceImprovement - 1e-9;
        return (activate, string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"mean Dice {fresh:0.####} vs {current:0.####} of active model {active}: {(difference >= 0 ? "+" : "")}{difference:0.####}, "
            + $"{(activate ? "at least" : "below")} the required {(minDiceImprovement >= 0 ? "+" : "")}{minDiceImprovement:0.####}"));
    }

    public async Task<ModelComparison?> ComparisonOfModelAsync(long modelId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectComparison + " WHERE model_id = @model");
        command.Parameters.Add(new NpgsqlParameter<long>("model", modelId));
        return await ReadComparisonAsync(command, cancellationToken);
    }

    public async Task<ModelComparison?> ComparisonOfRunAsync(long runId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectComparison + " WHERE trigger_id = (SELECT id FROM retrain_triggers WHERE run_id = @run)");
        command.Parameters.Add(new NpgsqlParameter<long>("run", runId));
        return await ReadComparisonAsync(command, cancellationToken);
    }

    private static async Task<ModelComparison?> ReadComparisonAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }
        var result = new ModelComparison
        {
            ModelId = reader.GetInt64(0),
            ActiveModelId = reader.IsDBNull(1) ? 0 : reader.GetInt64(1),
            MinDiceImprovement = reader.GetDouble(4),
            Activated = reader.GetBoolean(5),
            Reason = reader.GetString(6),
            CreateTime = Timestamp.FromDateTimeOffset(reader.GetFieldValue<DateTimeOffset>(7)),
        };
        if (!reader.IsDBNull(2))
        {
            result.ActiveDice = reader.GetDouble(2);
        }
        if (!reader.IsDBNull(3))
        {
            result.NewDice = reader.GetDouble(3);
        }
        return result;
    }

    private static async Task<RetrainTrigger?> ReadTriggerAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? new RetrainTrigger(reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.GetInt32(3),
                reader.IsDBNull(4) ? null : reader.GetInt64(4), reader.IsDBNull(5) ? null : reader.GetInt64(5),
                reader.IsDBNull(6) ? null : reader.GetString(6), reader.GetFieldValue<DateTimeOffset>(7))
            : null;
    }
}
