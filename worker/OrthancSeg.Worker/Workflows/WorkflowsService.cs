using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Grpc;
using OrthancSeg.Worker.Inference;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Training;
using ContractLabelDefinition = OrthancSeg.Contracts.V1.LabelDefinition;
using ContractWorkflow = OrthancSeg.Contracts.V1.Workflow;
using LabelDefinition = OrthancSeg.Worker.Labels.LabelDefinition;

namespace OrthancSeg.Worker.Workflows;

/// <summary>orthancseg.v1.WorkflowService: workflows' validation, backfills on create, resume and a changed selection, and contract mapping.</summary>
internal sealed class WorkflowsService(WorkflowStore workflows, JobQueue queue, WorkflowTraining training, InferenceStore inference)
    : WorkflowService.WorkflowServiceBase
{
    private static readonly HashSet<string> UpdatableFields =
        ["selection", "labels", "allow_ohif_default_names", "dataset_name", "inference", WorkflowTraining.DefaultsField, WorkflowTraining.PolicyField];

    public override async Task<CreateWorkflowResponse> CreateWorkflow(CreateWorkflowRequest request, ServerCallContext context)
    {
        if (request.Workflow is null)
        {
            throw new InvalidArgumentException("workflow", "is required");
        }
        var spec = Spec(request.Workflow, request.SetAllowOhifDefaultNames ? request.Workflow.AllowOhifDefaultNames : true);
        WorkflowTraining.Validate(request.Workflow, null);
        var created = await workflows.CreateAsync(spec, context.CancellationToken);
        await training.SetAsync(created.Id, request.Workflow, null, context.CancellationToken);
        if (request.Workflow.Inference is { } policy)
        {
            await inference.SetAutoInferAsync(created.Id, policy.AutoInfer, context.CancellationToken);
        }
        await BackfillWorkflowHandler.EnqueueAsync(queue, created.Name, created.CreatedAt, context.CancellationToken);
        return new CreateWorkflowResponse { Workflow = await ToContractAsync(created, context.CancellationToken) };
    }

    public override async Task<ListWorkflowsResponse> ListWorkflows(ListWorkflowsRequest request, ServerCallContext context)
    {
        var size = Paging.PageSize(request.PageSize, 50, 500);
        var after = Paging.KeyFromToken(request);
        var page = await workflows.ListAsync(StateName(request.State), after, size + 1, context.CancellationToken);
        var response = new ListWorkflowsResponse();
        foreach (var workflow in page.Take(size))
        {
            response.Workflows.Add(await ToContractAsync(workflow, context.CancellationToken));
        }
        if (page.Count > size)
        {
            response.NextPageToken = Paging.Token(request, page[size - 1].Name);
        }
        return response;
    }

    public override async Task<GetWorkflowResponse> GetWorkflow(GetWorkflowRequest request, ServerCallContext context) =>
        new() { Workflow = await ToContractAsync(await workflows.GetAsync(RequestFields.Required(request.Name, "name"), context.CancellationToken), context.CancellationToken) };

    public override async Task<UpdateWorkflowResponse> UpdateWorkflow(UpdateWorkflowRequest request, ServerCallContext context)
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
        var updated = await workflows.UpdateAsync(Spec(request.Workflow, request.Workflow.AllowOhifDefaultNames), fields, context.CancellationToken);
        await training.SetAsync(updated.Id, request.Workflow, fields, context.CancellationToken);
        if (fields.Contains("inference"))
        {
            await inference.SetAutoInferAsync(updated.Id, request.Workflow.Inference?.AutoInfer ?? false, context.CancellationToken);
        }
        if (fields.Contains("selection") && updated.IsActive)
        {
            await BackfillWorkflowHandler.EnqueueAsync(queue, updated.Name, updated.UpdatedAt, context.CancellationToken);
        }
        return new UpdateWorkflowResponse { Workflow = await ToContractAsync(updated, context.CancellationToken) };
    }

    public override async Task<PauseWorkflowResponse> PauseWorkflow(PauseWorkflowRequest request, ServerCallContext context) =>
        new() { Workflow = await ToContractAsync(await workflows.SetStateAsync(RequestFields.Required(request.Name, "name"), Workflow.Paused, context.CancellationToken), context.CancellationToken) };

    public override async Task<ResumeWorkflowResponse> ResumeWorkflow(ResumeWorkflowRequest request, ServerCallContext context)
    {
        var workflow = await workflows.SetStateAsync(RequestFields.Required(request.Name, "name"), Workflow.Active, context.CancellationToken);
        await BackfillWorkflowHandler.EnqueueAsync(queue, workflow.Name, workflow.UpdatedAt, context.CancellationToken);
        return new ResumeWorkflowResponse { Workflow = await ToContractAsync(workflow, context.CancellationToken) };
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

}
