using System.Globalization;
using Microsoft.Extensions.Options;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Datasets;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Training;

/// <summary>The payload of a "retrain-check" job: the period it checks for (0 for a check asked for when a policy was set).</summary>
internal sealed record RetrainCheckJob(long Period);

/// <summary>
/// The "retrain-check" job: the retrain policy, driven by the job engine. Each check queues the next one, due at the start of the next
/// <see cref="TrainingOptions.RetrainCheckInterval"/> (its key is the period, so two workers queue it once), while any workflow has a
/// policy on; setting a policy queues a check at once. For each such workflow the check moves its trigger one step: opens one when
/// enough accepted labels are new and the interval has passed, exports its snapshot, trains it with the workflow's defaults once the
/// export succeeded, or closes it when the export or the run failed. The model's comparison and activation happen when it registers
/// (<see cref="RetrainStore.CompareAsync"/>). One open trigger per workflow (a unique index) and one run per trigger (linked in the
/// run's transaction) keep two workers, or a restarted one, from starting two runs.
/// </summary>
internal sealed partial class RetrainCheckHandler(
    WorkflowTrainingStore settings,
    RetrainStore retrains,
    TrainingStore store,
    SnapshotStore snapshots,
    SnapshotsService exports,
    TrainingStarter starter,
    JobQueue queue,
    IOptions<TrainingOptions> options,
    ILogger<RetrainCheckHandler> logger) : JobHandler<RetrainCheckJob>, IJobKind
{
    public static string Kind => "retrain-check";

    public static string Pool => "retrain";

    /// <summary>A check at once, after a workflow's policy was set at <paramref name="at"/>.</summary>
    public static Task<EnqueuedJob> EnqueueNowAsync(JobQueue queue, string workflow, DateTimeOffset at, CancellationToken cancellationToken) =>
        queue.EnqueueAsync(Kind, string.Create(CultureInfo.InvariantCulture, $"{workflow}@{at.ToUnixTimeMilliseconds()}"), new RetrainCheckJob(0),
            cancellationToken: cancellationToken);

    protected override async Task RunAsync(RetrainCheckJob payload, JobAttempt attempt, CancellationToken cancellationToken)
    {
        var workflows = await settings.RetrainingAsync(cancellationToken);
        if (workflows.Count == 0)
        {
            // Nothing to watch: the chain of checks ends here, and setting a policy starts it again.
            return;
        }
        // The next check is queued first, so a check that fails does not end the chain.
        var period = (long)options.Value.RetrainCheckInterval.TotalMilliseconds;
        var next = (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / period) + 1;
        await queue.EnqueueAsync(Kind, string.Create(CultureInfo.InvariantCulture, $"every-{period}ms-{next}"), new RetrainCheckJob(next),
            notBefore: DateTimeOffset.FromUnixTimeMilliseconds(next * period), cancellationToken: cancellationToken);
        foreach (var workflow in workflows)
        {
            await CheckAsync(workflow, cancellationToken);
        }
    }

    private async Task CheckAsync(RetrainingWorkflow workflow, CancellationToken ct)
    {
        var trigger = await retrains.LastTriggerAsync(workflow.WorkflowId, ct);
        if (trigger is null || trigger.State is not (RetrainStore.Exporting or RetrainStore.Training))
        {
            var policy = workflow.Policy;
            if (trigger is not null && trigger.CreatedAt + TimeSpan.FromSeconds(policy.MinIntervalSeconds) > DateTimeOffset.UtcNow)
            {
                return;
            }
            if ((await store.ListRunsAsync(workflow.Workflow, null, 1, ct)) is [{ IsActive: true }, ..])
            {
                // A run started by hand is training; its snapshot becomes the baseline when it is done.
                return;
            }
            var labels = await retrains.NewLabelsAsync(workflow.WorkflowId, ct);
            if (labels.Count < policy.MinNewLabels)
            {
                return;
            }
            trigger = await retrains.OpenTriggerAsync(workflow.WorkflowId, labels, policy.MinDiceImprovement, ct);
            if (trigger is null)
            {
                return;
            }
            LogTriggered(logger, workflow.Workflow, trigger.Id, labels.Count);
        }
        if (trigger.State == RetrainStore.Exporting)
        {
            await ExportOrTrainAsync(workflow, trigger, ct);
            return;
        }
        var run = await store.GetRunAsync(trigger.RunId!.Value, ct);
        if (run.State is TrainingStore.Failed or TrainingStore.Cancelled)
        {
            await retrains.FailAsync(trigger.Id, RetrainStore.Training, $"run {run.Id} {run.State}: {run.Error}", ct);
        }
        else if (run.State == TrainingStore.Queued)
        {
            // A worker that stopped between creating the run and queueing its job left it without one.
            await starter.QueuePreprocessingAsync(run.Id, ct);
        }
    }

    private async Task ExportOrTrainAsync(RetrainingWorkflow workflow, RetrainTrigger trigger, CancellationToken ct)
    {
        if (trigger.SnapshotId is not { } snapshotId)
        {
            try
            {
                var export = await exports.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = workflow.Workflow }, ct);
                await retrains.SetSnapshotAsync(trigger.Id, export.Snapshot.Id, ct);
            }
            catch (FailedPreconditionException)
            {
                // Another export of the workflow is running; the next check tries again.
            }
            return;
        }
        await snapshots.ReconcileAsync(snapshotId, null, ct);
        var snapshot = await snapshots.GetAsync(snapshotId, ct);
        if (snapshot.State == SnapshotStore.Failed)
        {
            await retrains.FailAsync(trigger.Id, RetrainStore.Exporting, $"snapshot {snapshotId} failed: {snapshot.Error}", ct);
        }
        else if (snapshot.State == SnapshotStore.Succeeded)
        {
            try
            {
                var runId = await starter.StartAsync(new StartTrainingRequest { Workflow = workflow.Workflow, SnapshotId = snapshotId }, trigger.Id, ct);
                LogStarted(logger, workflow.Workflow, trigger.Id, runId, snapshotId);
            }
            catch (Exception e) when (e is FailedPreconditionException or InvalidArgumentException or NotFoundException)
            {
                await retrains.FailAsync(trigger.Id, RetrainStore.Exporting, $"training snapshot {snapshotId} could not start: {e.Message}", ct);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Retrain policy of workflow {Workflow} fired (trigger {TriggerId}): {NewLabels} newly accepted labels")]
    private static partial void LogTriggered(ILogger logger, string workflow, long triggerId, long newLabels);

    [LoggerMessage(Level = LogLevel.Information, Message = "Retrain policy of workflow {Workflow} (trigger {TriggerId}) started training run {RunId} on snapshot {SnapshotId}")]
    private static partial void LogStarted(ILogger logger, string workflow, long triggerId, long runId, long snapshotId);
}
