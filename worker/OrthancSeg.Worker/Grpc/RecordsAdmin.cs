using System.Globalization;
using System.Text;
using Google.Protobuf.WellKnownTypes;
using Npgsql;
using NpgsqlTypes;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Inference;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Labels;
using OrthancSeg.Worker.Training;
using OrthancSeg.Worker.Workflows;
using ContractCase = OrthancSeg.Contracts.V1.Case;
using ContractLabel = OrthancSeg.Contracts.V1.Label;
using ContractLabelDefinition = OrthancSeg.Contracts.V1.LabelDefinition;
using ContractPending = OrthancSeg.Contracts.V1.PendingSegmentation;
using ContractSegmentMatch = OrthancSeg.Contracts.V1.SegmentMatch;
using ContractWorkflow = OrthancSeg.Contracts.V1.Workflow;
using LabelDefinition = OrthancSeg.Worker.Labels.LabelDefinition;
using SegmentMatch = OrthancSeg.Worker.Labels.SegmentMatch;
using Workflow = OrthancSeg.Worker.Workflows.Workflow;

namespace OrthancSeg.Worker.Grpc;

/// <summary>The admin RPCs for workflows, cases, labels and dead letters: validation, paging and contract mapping.</summary>
internal sealed class RecordsAdmin(WorkflowStore workflows, CaseStore cases, LabelStore labels, JobQueue queue,
    NpgsqlDataSource dataSource, WorkflowTraining training, InferenceStore inference)
{
    private static readonly HashSet<string> UpdatableFields =
        ["selection", "labels", "allow_ohif_default_names", "dataset_name", "inference", WorkflowTraining.DefaultsField, WorkflowTraining.PolicyField];

    public async Task<CreateWorkflowResponse> CreateWorkflowAsync(CreateWorkflowRequest request, CancellationToken cancellationToken)
    {
        if (request.Workflow is null)
        {
            throw new InvalidArgumentException("workflow", "is required");
        }
        var spec = Spec(request.Workflow, request.SetAllowOhifDefaultNames ? request.Workflow.AllowOhifDefaultNames : true);
        WorkflowTraining.Validate(request.Workflow, null);
        var created = await workflows.CreateAsync(spec, cancellationToken);
        await training.SetAsync(created.Id, request.Workflow, null, cancellationToken);
        if (request.Workflow.Inference is { } policy)
        {
            await inference.SetAutoInferAsync(created.Id, policy.AutoInfer, cancellationToken);
        }
        await BackfillWorkflowHandler.EnqueueAsync(queue, created.Name, created.CreatedAt, cancellationToken);
        return new CreateWorkflowResponse { Workflow = await ToContractAsync(created, cancellationToken) };
    }

    public async Task<ListWorkflowsResponse> ListWorkflowsAsync(ListWorkflowsRequest request, CancellationToken cancellationToken)
    {
        var size = Paging.PageSize(request.PageSize, 50, 500);
        var after = Paging.KeyFromToken(request.PageToken);
        var page = await workflows.ListAsync(StateName(request.State), after, size + 1, cancellationToken);
        var response = new ListWorkflowsResponse();
        foreach (var workflow in page.Take(size))
        {
            response.Workflows.Add(await ToContractAsync(workflow, cancellationToken));
        }
        if (page.Count > size)
        {
            response.NextPageToken = Paging.Token(page[size - 1].Name);
        }
        return response;
    }

    public async Task<GetWorkflowResponse> GetWorkflowAsync(GetWorkflowRequest request, CancellationToken cancellationToken) =>
        new() { Workflow = await ToContractAsync(await workflows.GetAsync(Required(request.Name, "name"), cancellationToken), cancellationToken) };

    public async Task<UpdateWorkflowResponse> UpdateWorkflowAsync(UpdateWorkflowRequest request, CancellationToken cancellationToken)
    {
        if (request.Workflow is null || request.Workflow.Name.Length == 0)
        {
            throw new InvalidArgumentException("workflow.name", "is required");
        }
        var fields = request.UpdateMask?.Paths.ToHashSet(StringComparer.Ordinal) ?? [];
        var unknown = fields.Where(f => !UpdatableFields.Contains(f)).ToList();
        if (fields.Count == 0 || unknown.Count > 0)
        {
            throw new InvalidArgumentException("update_mask", fields.Count == 0
                ? $"name the fields to change: {string.Join(", ", UpdatableFields)}"
                : $"{string.Join(", ", unknown)} cannot be changed; changeable: {string.Join(", ", UpdatableFields)}");
        }
        WorkflowTraining.Validate(request.Workflow, fields);
        var updated = await workflows.UpdateAsync(Spec(request.Workflow, request.Workflow.AllowOhifDefaultNames), fields, cancellationToken);
        await training.SetAsync(updated.Id, request.Workflow, fields, cancellationToken);
        if (fields.Contains("inference"))
        {
            await inference.SetAutoInferAsync(updated.Id, request.Workflow.Inference?.AutoInfer ?? false, cancellationToken);
        }
        if (fields.Contains("selection") && updated.IsActive)
        {
            await BackfillWorkflowHandler.EnqueueAsync(queue, updated.Name, updated.UpdatedAt, cancellationToken);
        }
        return new UpdateWorkflowResponse { Workflow = await ToContractAsync(updated, cancellationToken) };
    }

    public async Task<PauseWorkflowResponse> PauseWorkflowAsync(PauseWorkflowRequest request, CancellationToken cancellationToken) =>
        new() { Workflow = await ToContractAsync(await workflows.SetStateAsync(Required(request.Name, "name"), Workflow.Paused, cancellationToken), cancellationToken) };

    public async Task<ResumeWorkflowResponse> ResumeWorkflowAsync(ResumeWorkflowRequest request, CancellationToken cancellationToken)
    {
        var workflow = await workflows.SetStateAsync(Required(request.Name, "name"), Workflow.Active, cancellationToken);
        await BackfillWorkflowHandler.EnqueueAsync(queue, workflow.Name, workflow.UpdatedAt, cancellationToken);
        return new ResumeWorkflowResponse { Workflow = await ToContractAsync(workflow, cancellationToken) };
    }

    public async Task<ListCasesResponse> ListCasesAsync(ListCasesRequest request, CancellationToken cancellationToken)
    {
        var size = Paging.PageSize(request.PageSize, 100, 1000);
        var before = Paging.IdFromToken(request.PageToken);
        if (request.Workflow.Length > 0)
        {
            await workflows.GetAsync(request.Workflow, cancellationToken);
        }
        var status = request.Status switch
        {
            CaseStatus.Unspecified => null,
            CaseStatus.Unlabeled => "unlabeled",
            CaseStatus.Labeled => "labeled",
            CaseStatus.Unusable => "unusable",
            _ => throw new InvalidArgumentException("status", $"{request.Status} is not a case status"),
        };
        var page = await cases.ListAsync(request.Workflow.Length == 0 ? null : request.Workflow, status, before, size + 1, cancellationToken);
        var response = new ListCasesResponse();
        response.Cases.AddRange(page.Take(size).Select(ToContract));
        if (page.Count > size)
        {
            response.NextPageToken = Paging.Token(page[size - 1].Id);
        }
        return response;
    }

    public async Task<GetCaseResponse> GetCaseAsync(GetCaseRequest request, CancellationToken cancellationToken) =>
        new() { Case = ToContract(await cases.GetAsync(Required(request.CaseKey, "case_key"), cancellationToken)) };

    public async Task<ListLabelsResponse> ListLabelsAsync(ListLabelsRequest request, CancellationToken cancellationToken)
    {
        var key = Required(request.CaseKey, "case_key");
        await cases.GetAsync(key, cancellationToken);
        var size = Paging.PageSize(request.PageSize, 100, 1000);
        var before = Paging.IdFromToken(request.PageToken);
        var page = await labels.ListAsync(key, before, size + 1, cancellationToken);
        var response = new ListLabelsResponse();
        response.Labels.AddRange(page.Take(size).Select(ToContract));
        if (page.Count > size)
        {
            response.NextPageToken = Paging.Token(page[size - 1].Id);
        }
        return response;
    }

    public async Task<ListPendingSegmentationsResponse> ListPendingSegmentationsAsync(ListPendingSegmentationsRequest request, CancellationToken cancellationToken)
    {
        var size = Paging.PageSize(request.PageSize, 100, 1000);
        DateTimeOffset? before = Paging.IdFromToken(request.PageToken) is { } ticks ? new DateTimeOffset(ticks, TimeSpan.Zero) : null;
        var page = await labels.ListPendingAsync(before, size + 1, cancellationToken);
        var response = new ListPendingSegmentationsResponse();
        response.PendingSegmentations.AddRange(page.Take(size).Select(p => new ContractPending
        {
            SopInstanceUid = p.SopInstanceUid,
            OrthancInstanceId = p.OrthancInstanceId,
            ReferencedSeriesInstanceUids = { p.ReferencedSeriesInstanceUids },
            Reason = p.Reason,
            CreateTime = Timestamp.FromDateTimeOffset(p.CreatedAt),
        }));
        if (page.Count > size)
        {
            response.NextPageToken = Paging.Token(page[size - 1].CreatedAt.UtcTicks);
        }
        return response;
    }

    public async Task<ListDeadLettersResponse> ListDeadLettersAsync(ListDeadLettersRequest request, CancellationToken cancellationToken)
    {
        var size = Paging.PageSize(request.PageSize, 100, 1000);
        var before = Paging.IdFromToken(request.PageToken);
        await using var command = dataSource.CreateCommand("""
            SELECT id, kind, idempotency_key, attempts, coalesce(last_error, ''), created_at, coalesce(dead_since, created_at)
            FROM dead_letters
            WHERE @before IS NULL OR id < @before
            ORDER BY id DESC
            LIMIT @limit
            """);
        command.Parameters.Add(new NpgsqlParameter("before", NpgsqlDbType.Bigint) { Value = (object?)before ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<int>("limit", size + 1));
        var response = new ListDeadLettersResponse();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            if (response.DeadLetters.Count == size)
            {
                response.NextPageToken = Paging.Token(response.DeadLetters[^1].Id);
                break;
            }
            response.DeadLetters.Add(new DeadLetter
            {
                Id = reader.GetInt64(0),
                Kind = reader.GetString(1),
                Key = reader.GetString(2),
                Attempts = reader.GetInt32(3),
                LastError = reader.GetString(4),
                CreateTime = Timestamp.FromDateTimeOffset(reader.GetFieldValue<DateTimeOffset>(5)),
                DeadTime = Timestamp.FromDateTimeOffset(reader.GetFieldValue<DateTimeOffset>(6)),
            });
        }
        return response;
    }

    public async Task<RetryDeadLetterResponse> RetryDeadLetterAsync(RetryDeadLetterRequest request, CancellationToken cancellationToken)
    {
        if (request.Id <= 0)
        {
            throw new InvalidArgumentException("id", $"{request.Id} is not a job id");
        }
        await queue.RetryDeadAsync(new JobId(request.Id), cancellationToken);
        return new RetryDeadLetterResponse { Id = request.Id };
    }

    private async Task<ContractWorkflow> ToContractAsync(Workflow workflow, CancellationToken cancellationToken)
    {
        var counts = await workflows.CountsAsync(workflow.Id, cancellationToken);
        var result = new ContractWorkflow
        {
            Name = workflow.Name,
            DatasetId = workflow.DatasetId,
            DatasetName = workflow.DatasetName,
            Selection = new OrthancSeg.Contracts.V1.SelectionRule
            {
                Modality = workflow.Selection.Modality ?? "",
                SeriesDescriptionPattern = workflow.Selection.SeriesDescriptionPattern ?? "",
                BodyPart = workflow.Selection.BodyPart ?? "",
            },
            AllowOhifDefaultNames = workflow.AllowOhifDefaultNames,
            State = workflow.IsActive ? WorkflowState.Active : WorkflowState.Paused,
            CaseKeyPrefix = workflow.CaseKeyPrefix,
            CaseCount = counts.Cases,
            LabeledCaseCount = counts.LabeledCases,
            CreateTime = Timestamp.FromDateTimeOffset(workflow.CreatedAt),
            UpdateTime = Timestamp.FromDateTimeOffset(workflow.UpdatedAt),
            Inference = new InferencePolicy { AutoInfer = await inference.AutoInferAsync(workflow.Id, cancellationToken) },
        };
        result.Labels.AddRange(workflow.Labels.Select(l => new ContractLabelDefinition
        {
            Value = l.Value,
            Name = l.Name,
            Synonyms = { l.Synonyms },
            Code = l.Code ?? "",
            Colour = l.Colour ?? "",
        }));
        await training.DescribeAsync(workflow.Id, result, cancellationToken);
        return result;
    }

    private static ContractCase ToContract(CaseRecord c)
    {
        var result = new ContractCase
        {
            CaseKey = c.CaseKey,
            Workflow = c.Workflow,
            Status = c.Status switch { "labeled" => CaseStatus.Labeled, "unusable" => CaseStatus.Unusable, _ => CaseStatus.Unlabeled },
            StatusReason = c.StatusReason ?? "",
            OrthancSeriesId = c.OrthancSeriesId,
            OrthancStudyId = c.OrthancStudyId,
            StudyInstanceUid = c.StudyInstanceUid,
            SeriesInstanceUid = c.SeriesInstanceUid,
            FrameOfReferenceUid = c.FrameOfReferenceUid ?? "",
            SopInstanceUids = { c.SopInstanceUids },
            Modality = c.Modality ?? "",
            SeriesDescription = c.SeriesDescription ?? "",
            BodyPart = c.BodyPart ?? "",
            InstanceCount = c.InstanceCount,
            CurrentLabelSopInstanceUid = c.CurrentLabelSopInstanceUid ?? "",
            LabelCount = c.LabelCount,
            CreateTime = Timestamp.FromDateTimeOffset(c.CreatedAt),
            UpdateTime = Timestamp.FromDateTimeOffset(c.UpdatedAt),
        };
        if (c.Geometry is { } g)
        {
            result.Geometry = new OrthancSeg.Contracts.V1.GeometrySummary
            {
                Columns = g.Columns,
                Rows = g.Rows,
                Slices = g.Slices,
                Spacing = { g.Spacing },
                Origin = { g.Origin },
                Orientation = { g.Orientation },
            };
        }
        return result;
    }

    internal static ContractLabel ToContract(LabelRecord l)
    {
        var result = new ContractLabel
        {
            SopInstanceUid = l.SopInstanceUid,
            OrthancInstanceId = l.OrthancInstanceId,
            CaseKey = l.CaseKey,
            Source = l.Source switch { "model" => LabelSource.Model, "import" => LabelSource.Import, _ => LabelSource.Manual },
            Author = l.Author ?? "",
            Verdict = l.Verdict switch { LabelStore.Accepted => LabelVerdict.Accepted, LabelStore.Proposed => LabelVerdict.Proposed, _ => LabelVerdict.Rejected },
            RejectionReason = l.RejectionReason ?? "",
            IsCurrent = l.IsCurrent,
            PaintedSlices = { l.PaintedSlices },
            CreateTime = Timestamp.FromDateTimeOffset(l.CreatedAt),
            Id = l.Id,
        };
        if (l.AcceptedAt is { } accepted)
        {
            result.AcceptTime = Timestamp.FromDateTimeOffset(accepted);
        }
        result.Segments.AddRange(l.Segments.Select(s => new OrthancSeg.Contracts.V1.SegmentMapping
        {
            SegmentNumber = s.SegmentNumber,
            SegmentLabel = s.SegmentLabel,
            LabelValue = s.LabelValue,
            LabelName = s.LabelName ?? "",
            Match = s.Match switch
            {
                SegmentMatch.Name => ContractSegmentMatch.Name,
                SegmentMatch.Synonym => ContractSegmentMatch.Synonym,
                SegmentMatch.OhifDefaultName => ContractSegmentMatch.OhifDefaultName,
                _ => ContractSegmentMatch.None,
            },
            PaintedFrames = s.PaintedFrames,
        }));
        return result;
    }

    private static WorkflowSpec Spec(ContractWorkflow w, bool allowOhifDefaultNames) => new(
        w.Name, w.DatasetId, w.DatasetName.Length == 0 ? null : w.DatasetName,
        w.Labels.Select(l => new LabelDefinition(l.Value, l.Name, [.. l.Synonyms], l.Code.Length == 0 ? null : l.Code, l.Colour.Length == 0 ? null : l.Colour)).ToList(),
        Blank(w.Selection?.Modality), Blank(w.Selection?.SeriesDescriptionPattern), Blank(w.Selection?.BodyPart), allowOhifDefaultNames);

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static string? StateName(WorkflowState state) => state switch
    {
        WorkflowState.Unspecified => null,
        WorkflowState.Active => Workflow.Active,
        WorkflowState.Paused => Workflow.Paused,
        _ => throw new InvalidArgumentException("state", $"{state} is not a workflow state"),
    };

    private static string Required(string value, string field) =>
        string.IsNullOrWhiteSpace(value) ? throw new InvalidArgumentException(field, "is required") : value;
}
