using Google.Protobuf.WellKnownTypes;
using OrthancSeg.Worker.Jobs;
using ContractWorkflow = OrthancSeg.Contracts.V1.Workflow;

namespace OrthancSeg.Worker.Training;

/// <summary>
/// The training side of a workflow for the workflow RPCs: its defaults and retrain policy, checked before the workflow is written,
/// stored after it, and shown with the policy's live figures (new labels, last trigger).
/// </summary>
internal sealed class WorkflowTraining(WorkflowTrainingStore settings, RetrainStore retrains, JobQueue queue)
{
    public const string DefaultsField = "training_defaults";
    public const string PolicyField = "retrain_policy";

    /// <summary>InvalidArgument when the defaults or the policy that <paramref name="fields"/> (null: all) names could never be used.</summary>
    public static void Validate(ContractWorkflow workflow, IReadOnlySet<string>? fields)
    {
        var (defaults, policy) = Named(workflow, fields);
        TrainingDefaultsRules.Validate(defaults, policy);
    }

    /// <summary>Stores what <paramref name="fields"/> (null: all that the request sets) names, and checks the policy at once when it is on.</summary>
    public async Task SetAsync(long workflowId, ContractWorkflow workflow, IReadOnlySet<string>? fields, CancellationToken cancellationToken)
    {
        var (defaults, policy) = Named(workflow, fields);
        await settings.SetAsync(workflowId, defaults, policy, cancellationToken);
        if (policy is { Enabled: true })
        {
            await RetrainCheckHandler.EnqueueNowAsync(queue, workflow.Name, DateTimeOffset.UtcNow, cancellationToken);
        }
    }

    /// <summary>Fills the workflow's training_defaults and retrain_policy (with its output-only figures).</summary>
    public async Task DescribeAsync(long workflowId, ContractWorkflow result, CancellationToken cancellationToken)
    {
        var stored = await settings.GetAsync(workflowId, cancellationToken);
        result.TrainingDefaults = stored.Defaults ?? new();
        var policy = stored.Policy;
        policy.NewLabels = (await retrains.NewLabelsAsync(workflowId, cancellationToken)).Count;
        if (await retrains.LastTriggerAsync(workflowId, cancellationToken) is { } last)
        {
            policy.LastTriggerTime = Timestamp.FromDateTimeOffset(last.CreatedAt);
            policy.LastTriggerState = last.Error is null ? last.State : $"{last.State}: {last.Error}";
        }
        result.RetrainPolicy = policy;
    }

    private static (Contracts.V1.TrainingDefaults? Defaults, Contracts.V1.RetrainPolicy? Policy) Named(ContractWorkflow workflow, IReadOnlySet<string>? fields) =>
        fields is null
            ? (workflow.TrainingDefaults, workflow.RetrainPolicy)
            : (fields.Contains(DefaultsField) ? workflow.TrainingDefaults ?? new() : null, fields.Contains(PolicyField) ? workflow.RetrainPolicy ?? new() : null);
}
