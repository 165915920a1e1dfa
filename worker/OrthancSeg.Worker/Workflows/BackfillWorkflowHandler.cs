using OrthancSeg.Worker.Events;
using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Workflows;

/// <summary>The "backfill" job: every series already in Orthanc is offered to a workflow that was created or resumed.</summary>
internal sealed class BackfillWorkflowHandler(WorkflowBackfill backfill) : JobHandler<BackfillJob>, IJobKind
{
    public static string Kind => RecordingJobs.BackfillKind;

    public static string Pool => RecordingJobs.Pool;

    protected override Task RunAsync(BackfillJob payload, JobAttempt attempt, CancellationToken cancellationToken) =>
        backfill.RunAsync(payload, cancellationToken);
}
