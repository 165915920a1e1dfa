using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Training;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Inference;

/// <summary>
/// Queues inferences: one asked for by a person (StartInference), and the automatic one of every new case of a workflow whose auto-inference
/// is on and which has an active model (once per case and model, however often the case is recorded).
/// </summary>
internal sealed partial class InferenceStarter(
    InferenceStore store,
    JobQueue queue,
    IOptions<InferenceOptions> options,
    IOptions<TrainingOptions> trainingOptions,
    ILogger<InferenceStarter> logger)
{
    public string Backend => options.Value.Backend.Length > 0 ? options.Value.Backend : trainingOptions.Value.DefaultBackend;

    public async Task<long> StartAsync(CaseRecord caseRecord, long modelId, CancellationToken cancellationToken)
    {
        if (caseRecord.Geometry is null)
        {
            throw new FailedPreconditionException(
                $"case {caseRecord.CaseKey}'s series cannot be used as a volume ({caseRecord.StatusReason ?? "no geometry"}), so no model can predict it");
        }
        var id = (await store.CreateAsync(caseRecord.WorkflowId, caseRecord.Id, modelId, "manual", Backend, cancellationToken))!.Value;
        await EnqueueAsync(id, cancellationToken);
        return id;
    }

    /// <summary>Called where a case is recorded: queues its automatic inference when the workflow asks for one.</summary>
    public async Task AutoInferAsync(Workflow workflow, string caseKey, CaseStore cases, CancellationToken cancellationToken)
    {
        if (!await store.AutoInferAsync(workflow.Id, cancellationToken) || await store.ActiveModelAsync(workflow.Id, cancellationToken) is not { } modelId)
        {
            return;
        }
        var caseRecord = await cases.GetAsync(caseKey, cancellationToken);
        if (caseRecord.Geometry is null)
        {
            return;
        }
        if (await store.CreateAsync(workflow.Id, caseRecord.Id, modelId, "auto", Backend, cancellationToken) is { } id)
        {
            await EnqueueAsync(id, cancellationToken);
            LogQueued(logger, id, caseKey, modelId);
        }
    }

    private async Task EnqueueAsync(long id, CancellationToken cancellationToken)
    {
        var job = await PredictCaseHandler.EnqueueAsync(queue, id, options.Value.MaxAttempts, cancellationToken);
        await store.SetJobAsync(id, job.Id, cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Inference {InferenceId} of case {CaseKey} with model {ModelId} queued (auto-inference)")]
    private static partial void LogQueued(ILogger logger, long inferenceId, string caseKey, long modelId);
}
