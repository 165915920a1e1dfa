using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Workflows;

/// <summary>The payload of a "backfill" job: the workflow, and when it was created or resumed (milliseconds since the epoch).</summary>
internal sealed record BackfillJob(string Workflow, long At);

/// <summary>The "backfill" job: every series already in Orthanc is offered to a workflow that was created or resumed.</summary>
internal sealed class BackfillWorkflowHandler(WorkflowBackfill backfill) : JobHandler<BackfillJob>, IJobKind
{
    public static string Kind => "backfill";

    public static string Pool => RecordingOptions.Pool;

    /// <summary>A scan of every series in Orthanc for a workflow created or resumed at <paramref name="at"/>.</summary>
    public static Task<EnqueuedJob> EnqueueAsync(JobQueue queue, string workflowName, DateTimeOffset at, CancellationToken cancellationToken) =>
        queue.EnqueueAsync(Kind, $"{workflowName}@{at.ToUnixTimeMilliseconds()}", new BackfillJob(workflowName, at.ToUnixTimeMilliseconds()),
            cancellationToken: cancellationToken);

    protected override Task RunAsync(BackfillJob payload, JobAttempt attempt, CancellationToken cancellationToken) =>
        backfill.RunAsync(payload, cancellationToken);
}
