using System.Globalization;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Grpc;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Training;

/// <summary>orthancseg.v1.ModelService: the models training registered, and which one of a workflow is active.</summary>
internal sealed class ModelsService(TrainingStore store, WorkflowStore workflows, RetrainStore retrains) : ModelService.ModelServiceBase
{
    public override async Task<ListModelsResponse> ListModels(ListModelsRequest request, ServerCallContext context)
    {
        var size = Paging.PageSize(request.PageSize, 50, 500);
        var page = await store.ListModelsAsync(request.Workflow.Length == 0 ? null : request.Workflow, Paging.IdFromToken(request), size + 1,
            context.CancellationToken);
        var response = new ListModelsResponse();
        foreach (var model in page.Take(size))
        {
            response.Models.Add(await ToContractAsync(model, context.CancellationToken));
        }
        if (page.Count > size)
        {
            response.NextPageToken = Paging.Token(request, page[size - 1].Id);
        }
        return response;
    }

    public override async Task<GetModelResponse> GetModel(GetModelRequest request, ServerCallContext context) =>
        new() { Model = await ToContractAsync(await store.GetModelAsync(Id(request.Id), context.CancellationToken), context.CancellationToken) };

    public override async Task<ActivateModelResponse> ActivateModel(ActivateModelRequest request, ServerCallContext context) =>
        new() { Model = await ToContractAsync(await store.ActivateModelAsync(Id(request.Id), context.CancellationToken), context.CancellationToken) };

    private static long Id(long id) => id > 0 ? id : throw new InvalidArgumentException("id", $"{id} is not a model id");

    private async Task<Model> ToContractAsync(ModelRecord model, CancellationToken cancellationToken)
    {
        var names = (await workflows.GetAsync(model.Workflow, cancellationToken)).Labels.ToDictionary(l => l.Value, l => l.Name);
        var result = new Model
        {
            Id = model.Id,
            Workflow = model.Workflow,
            RunId = model.RunId,
            SnapshotId = model.SnapshotId,
            Location = model.Location,
            Configuration = model.Configuration,
            Trainer = model.Trainer,
            Plans = model.Plans,
            Folds = { model.Folds },
            TrainingSeconds = model.TrainingSeconds,
            Active = model.Active,
            CreateTime = Timestamp.FromDateTimeOffset(model.CreatedAt),
        };
        if (model.MeanDice is { } mean)
        {
            result.MeanDice = mean;
        }
        if (model.ActivatedAt is { } activated)
        {
            result.ActivateTime = Timestamp.FromDateTimeOffset(activated);
        }
        foreach (var (key, dice) in JsonSerializer.Deserialize<Dictionary<string, double>>(model.LabelDiceJson) ?? [])
        {
            var value = int.Parse(key, NumberStyles.None, CultureInfo.InvariantCulture);
            result.LabelDice.Add(new LabelDice { Value = value, Name = names.GetValueOrDefault(value, ""), Dice = dice });
        }
        if (await retrains.ComparisonOfModelAsync(model.Id, cancellationToken) is { } comparison)
        {
            result.Comparison = comparison;
        }
        return result;
    }
}
