using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Npgsql;
using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Segmentation;
using NpgsqlTypes;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Labels;

namespace OrthancSeg.Worker.Workflows;

/// <summary>What a caller asks for when creating or changing a workflow; checked by <see cref="WorkflowStore.Validate"/>.</summary>
internal sealed record WorkflowSpec(
    string Name, int DatasetId, string? DatasetName, IReadOnlyList<LabelDefinition> Labels,
    string? Modality, string? SeriesDescriptionPattern, string? BodyPart, bool AllowOhifDefaultNames);

/// <summary>Workflows and their label schemas in PostgreSQL.</summary>
internal sealed partial class WorkflowStore(NpgsqlDataSource dataSource)
{
    private const string SelectWorkflow = """
        SELECT w.id, w.name, w.dataset_id, w.dataset_name, w.case_key_prefix, w.case_key_salt, w.modality,
               w.series_description_pattern, w.body_part, w.allow_ohif_default_names, w.state, w.created_at, w.updated_at,
               coalesce((SELECT json_agg(json_build_object('value', l.value, 'name', l.name, 'synonyms', l.synonyms, 'code', l.code, 'colour', l.colour) ORDER BY l.value)
                         FROM workflow_labels l WHERE l.workflow_id = w.id)::text, '[]')
        FROM workflows w
        """;

    public static void Validate(WorkflowSpec spec)
    {
        var problems = new List<FieldProblem>();
        if (!WorkflowName().IsMatch(spec.Name ?? ""))
        {
            problems.Add(new("workflow.name", $"'{spec.Name}' is not a workflow name: use 1-63 lower-case letters, digits and dashes, starting with a letter or digit"));
        }
        if (spec.DatasetId is < 1 or > 999)
        {
            problems.Add(new("workflow.dataset_id", $"{spec.DatasetId} is not an nnU-Net dataset id (1..999)"));
        }
        if (spec.DatasetName is { Length: > 0 } datasetName && !DatasetName().IsMatch(datasetName))
        {
            problems.Add(new("workflow.dataset_name", $"'{datasetName}' is not an nnU-Net dataset name: use 1-64 letters and digits"));
        }
        if (spec.Labels.Count == 0)
        {
            problems.Add(new("workflow.labels", "a workflow needs at least one label, e.g. liver=1"));
        }
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var values = new HashSet<int>();
        for (var i = 0; i < spec.Labels.Count; i++)
        {
            var label = spec.Labels[i];
            if (label.Value is < 1 or > 255)
            {
                problems.Add(new($"workflow.labels[{i}].value", $"{label.Value} is not a label value (1..255; 0 is background)"));
            }
            if (!values.Add(label.Value))
            {
                problems.Add(new($"workflow.labels[{i}].value", $"value {label.Value} is used twice"));
            }
            if (string.IsNullOrWhiteSpace(label.Name) || label.Name.Trim().Length > 64)
            {
                problems.Add(new($"workflow.labels[{i}].name", "a label needs a name of 1-64 characters"));
            }
            foreach (var name in label.Synonyms.Prepend(label.Name ?? "").Where(n => !string.IsNullOrWhiteSpace(n)))
            {
                if (!names.Add(name.Trim()))
                {
                    problems.Add(new($"workflow.labels[{i}]", $"name or synonym '{name.Trim()}' is used twice (names match case-insensitively)"));
                }
            }
            if (label.Colour is { Length: > 0 } colour && !Colour().IsMatch(colour))
            {
                problems.Add(new($"workflow.labels[{i}].colour", $"'{colour}' is not a colour like #ff0000"));
            }
            if (label.Code is { Length: > 0 } code)
            {
                try
                {
                    CodedConcept.Parse(code);
                }
                catch (DicomException e)
                {
                    problems.Add(new($"workflow.labels[{i}].code", e.Message));
                }
            }
        }
        if (spec.SeriesDescriptionPattern is { Length: > 0 } pattern)
        {
            try
            {
                SelectionRule.Compile(pattern);
            }
            catch (ArgumentException e)
            {
                problems.Add(new("workflow.selection.series_description_pattern", e.Message.Split(" (Parameter")[0]));
            }
        }
        if (problems.Count > 0)
        {
            throw new InvalidArgumentException(problems);
        }
    }

    public async Task<Workflow> CreateAsync(WorkflowSpec spec, CancellationToken cancellationToken)
    {
        Validate(spec);
        var prefix = CaseKey.PrefixFor(spec.Name);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        long id;
        await using (var insert = new NpgsqlCommand("""
            INSERT INTO workflows (name, dataset_id, dataset_name, case_key_prefix, case_key_salt, modality, series_description_pattern, body_part, allow_ohif_default_names)
            VALUES (@name, @dataset_id, @dataset_name, @prefix, @salt, @modality, @pattern, @body_part, @allow)
            ON CONFLICT DO NOTHING
            RETURNING id
            """, connection, transaction))
        {
            insert.Parameters.Add(Text("name", spec.Name));
            insert.Parameters.Add(new NpgsqlParameter<int>("dataset_id", spec.DatasetId));
            insert.Parameters.Add(Text("dataset_name", string.IsNullOrWhiteSpace(spec.DatasetName) ? DefaultDatasetName(spec.Name) : spec.DatasetName));
            insert.Parameters.Add(Text("prefix", prefix));
            insert.Parameters.Add(new NpgsqlParameter<byte[]>("salt", RandomNumberGenerator.GetBytes(32)));
            insert.Parameters.Add(Text("modality", spec.Modality));
            insert.Parameters.Add(Text("pattern", spec.SeriesDescriptionPattern));
            insert.Parameters.Add(Text("body_part", spec.BodyPart));
            insert.Parameters.Add(new NpgsqlParameter<bool>("allow", spec.AllowOhifDefaultNames));
            if (await insert.ExecuteScalarAsync(cancellationToken) is not long created)
            {
                throw await ConflictAsync(connection, transaction, spec, prefix, cancellationToken);
            }
            id = created;
        }
        await InsertLabelsAsync(connection, transaction, id, spec.Labels, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return await GetAsync(spec.Name, cancellationToken);
    }

    public async Task<Workflow> GetAsync(string name, CancellationToken cancellationToken) =>
        await FindAsync(name, cancellationToken) ?? throw new NotFoundException($"There is no workflow named '{name}'");

    public async Task<Workflow?> FindAsync(string name, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectWorkflow + " WHERE w.name = @name");
        command.Parameters.Add(Text("name", name));
        return (await ReadAsync(command, cancellationToken)) is [var found, ..] ? found : null;
    }

    /// <summary>Workflows ordered by name after <paramref name="afterName"/> (keyset pagination).</summary>
    public async Task<IReadOnlyList<Workflow>> ListAsync(string? state, string? afterName, int limit, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectWorkflow + """
             WHERE (@state IS NULL OR w.state = @state) AND (@after IS NULL OR w.name > @after)
            ORDER BY w.name
            LIMIT @limit
            """);
        command.Parameters.Add(Text("state", state));
        command.Parameters.Add(Text("after", afterName));
        command.Parameters.Add(new NpgsqlParameter<int>("limit", limit));
        return await ReadAsync(command, cancellationToken);
    }

    /// <summary>Every workflow, active or paused: labels are recorded for cases of paused workflows too.</summary>
    public async Task<IReadOnlyList<Workflow>> ListAllAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectWorkflow + " ORDER BY w.id");
        return await ReadAsync(command, cancellationToken);
    }

    public async Task<IReadOnlyList<Workflow>> ListActiveAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectWorkflow + " WHERE w.state = 'active' ORDER BY w.id");
        return await ReadAsync(command, cancellationToken);
    }

    public async Task<Workflow> SetStateAsync(string name, string state, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("UPDATE workflows SET state = @state, updated_at = now() WHERE name = @name");
        command.Parameters.Add(Text("name", name));
        command.Parameters.Add(Text("state", state));
        if (await command.ExecuteNonQueryAsync(cancellationToken) == 0)
        {
            throw new NotFoundException($"There is no workflow named '{name}'");
        }
        return await GetAsync(name, cancellationToken);
    }

    /// <summary>Replaces the named fields; labels are replaced as a whole.</summary>
    public async Task<Workflow> UpdateAsync(WorkflowSpec spec, IReadOnlySet<string> fields, CancellationToken cancellationToken)
    {
        var current = await GetAsync(spec.Name, cancellationToken);
        var merged = new WorkflowSpec(current.Name, current.DatasetId,
            fields.Contains("dataset_name") ? spec.DatasetName : current.DatasetName,
            fields.Contains("labels") ? spec.Labels : current.Labels,
            fields.Contains("selection") ? spec.Modality : current.Selection.Modality,
            fields.Contains("selection") ? spec.SeriesDescriptionPattern : current.Selection.SeriesDescriptionPattern,
            fields.Contains("selection") ? spec.BodyPart : current.Selection.BodyPart,
            fields.Contains("allow_ohif_default_names") ? spec.AllowOhifDefaultNames : current.AllowOhifDefaultNames);
        Validate(merged);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var update = new NpgsqlCommand("""
            UPDATE workflows
            SET dataset_name = @dataset_name, modality = @modality, series_description_pattern = @pattern, body_part = @body_part,
                allow_ohif_default_names = @allow, updated_at = now()
            WHERE id = @id
            """, connection, transaction))
        {
            update.Parameters.Add(new NpgsqlParameter<long>("id", current.Id));
            update.Parameters.Add(Text("dataset_name", string.IsNullOrWhiteSpace(merged.DatasetName) ? DefaultDatasetName(merged.Name) : merged.DatasetName));
            update.Parameters.Add(Text("modality", merged.Modality));
            update.Parameters.Add(Text("pattern", merged.SeriesDescriptionPattern));
            update.Parameters.Add(Text("body_part", merged.BodyPart));
            update.Parameters.Add(new NpgsqlParameter<bool>("allow", merged.AllowOhifDefaultNames));
            await update.ExecuteNonQueryAsync(cancellationToken);
        }
        if (fields.Contains("labels"))
        {
            await using (var delete = new NpgsqlCommand("DELETE FROM workflow_labels WHERE workflow_id = @id", connection, transaction))
            {
                delete.Parameters.Add(new NpgsqlParameter<long>("id", current.Id));
                await delete.ExecuteNonQueryAsync(cancellationToken);
            }
            await InsertLabelsAsync(connection, transaction, current.Id, merged.Labels, cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return await GetAsync(spec.Name, cancellationToken);
    }

    public async Task<WorkflowCounts> CountsAsync(long workflowId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT count(*), count(*) FILTER (WHERE status = 'labeled') FROM cases WHERE workflow_id = @id
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", workflowId));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return new WorkflowCounts(reader.GetInt64(0), reader.GetInt64(1));
    }

    private static async Task InsertLabelsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long workflowId,
        IReadOnlyList<LabelDefinition> labels, CancellationToken cancellationToken)
    {
        foreach (var label in labels)
        {
            await using var insert = new NpgsqlCommand("""
                INSERT INTO workflow_labels (workflow_id, value, name, synonyms, code, colour)
                VALUES (@workflow_id, @value, @name, @synonyms, @code, @colour)
                """, connection, transaction);
            insert.Parameters.Add(new NpgsqlParameter<long>("workflow_id", workflowId));
            insert.Parameters.Add(new NpgsqlParameter<short>("value", (short)label.Value));
            insert.Parameters.Add(Text("name", label.Name.Trim()));
            insert.Parameters.Add(new NpgsqlParameter<string[]>("synonyms", label.Synonyms.Select(s => s.Trim()).Where(s => s.Length > 0).ToArray()));
            insert.Parameters.Add(Text("code", string.IsNullOrWhiteSpace(label.Code) ? null : label.Code));
            insert.Parameters.Add(Text("colour", string.IsNullOrWhiteSpace(label.Colour) ? null : label.Colour));
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    private static async Task<Exception> ConflictAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, WorkflowSpec spec, string prefix,
        CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            SELECT name, dataset_id, case_key_prefix FROM workflows WHERE name = @name OR dataset_id = @dataset_id OR case_key_prefix = @prefix LIMIT 1
            """, connection, transaction);
        command.Parameters.Add(Text("name", spec.Name));
        command.Parameters.Add(new NpgsqlParameter<int>("dataset_id", spec.DatasetId));
        command.Parameters.Add(Text("prefix", prefix));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return new AlreadyExistsException($"Workflow '{spec.Name}' conflicts with an existing workflow");
        }
        var name = reader.GetString(0);
        return name == spec.Name ? new AlreadyExistsException($"Workflow '{spec.Name}' already exists")
            : reader.GetInt32(1) == spec.DatasetId ? new AlreadyExistsException($"nnU-Net dataset id {spec.DatasetId} is already used by workflow '{name}'")
            : new AlreadyExistsException($"Workflow '{name}' already uses case key prefix '{prefix}'; choose a name that differs in more than dashes");
    }

    private static async Task<IReadOnlyList<Workflow>> ReadAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var result = new List<Workflow>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var labels = System.Text.Json.JsonSerializer.Deserialize<List<LabelRow>>(reader.GetString(13))!
                .Select(l => new LabelDefinition(l.value, l.name, l.synonyms ?? [], l.code, l.colour)).ToList();
            result.Add(new Workflow(
                reader.GetInt64(0), reader.GetString(1), reader.GetInt32(2), reader.GetString(3), reader.GetString(4),
                reader.GetFieldValue<byte[]>(5),
                new SelectionRule(Nullable(reader, 6), Nullable(reader, 7), Nullable(reader, 8)),
                reader.GetBoolean(9), reader.GetString(10), labels,
                reader.GetFieldValue<DateTimeOffset>(11), reader.GetFieldValue<DateTimeOffset>(12)));
        }
        return result;
    }

    private static string DefaultDatasetName(string workflowName)
    {
        var letters = new string(workflowName.Where(char.IsAsciiLetterOrDigit).ToArray());
        return letters.Length == 0 ? "Dataset" : letters;
    }

    private static string? Nullable(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    private static NpgsqlParameter Text(string name, string? value) => new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,62}$")]
    private static partial Regex WorkflowName();

    [GeneratedRegex("^[A-Za-z0-9]{1,64}$")]
    private static partial Regex DatasetName();

    [GeneratedRegex("^#[0-9a-fA-F]{6}$")]
    private static partial Regex Colour();

#pragma warning disable IDE1006, CA1812 // JSON shape of the aggregated label rows.
    private sealed record LabelRow(int value, string name, string[]? synonyms, string? code, string? colour);
#pragma warning restore IDE1006, CA1812
}
