using System.Globalization;
using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Training;

/// <summary>The payload of a training step's job: which run and which of its steps.</summary>
internal sealed record TrainingStepJob(long RunId, long StepId);

/// <summary>
/// The "training-preprocess" job: nnUNetv2_plan_and_preprocess of the run's snapshot, after writing its splits_final.json; then it queues
/// the run's fold jobs (local: once preprocessing succeeded; Slurm: once it is submitted, the folds depending on it with afterok).
/// Only one run of a workflow is active at a time, so preprocessing of one dataset id never runs twice at once.
/// </summary>
internal sealed class PreprocessHandler(TrainingStepRunner runner) : JobHandler<TrainingStepJob>, IJobKind
{
    public static string Kind => "training-preprocess";

    public static string Pool => TrainingStepRunner.Pool;

    public static Task<EnqueuedJob> EnqueueAsync(JobQueue queue, long runId, long stepId, int maxAttempts, CancellationToken cancellationToken) =>
        queue.EnqueueAsync(Kind, string.Create(CultureInfo.InvariantCulture, $"training-{runId}-preprocess"), new TrainingStepJob(runId, stepId), maxAttempts,
            cancellationToken: cancellationToken);

    protected override Task RunAsync(TrainingStepJob payload, JobAttempt attempt, CancellationToken cancellationToken) =>
        runner.RunAsync(payload, attempt, cancellationToken);

    protected override Task OnEndedAsync(TrainingStepJob payload, JobAttempt attempt, JobEnding ending, CancellationToken cancellationToken) =>
        runner.EndAsync(payload, ending, cancellationToken);
}

/// <summary>The "training-fold" job: nnUNetv2_train of one fold; the run's last fold to succeed registers the model.</summary>
internal sealed class TrainFoldHandler(TrainingStepRunner runner) : JobHandler<TrainingStepJob>, IJobKind
{
    public static string Kind => "training-fold";

    public static string Pool => TrainingStepRunner.Pool;

    public static Task<EnqueuedJob> EnqueueAsync(JobQueue queue, long runId, TrainingStepRecord step, int maxAttempts, CancellationToken cancellationToken) =>
        queue.EnqueueAsync(Kind, string.Create(CultureInfo.InvariantCulture, $"training-{runId}-fold-{step.Fold}"), new TrainingStepJob(runId, step.Id),
            maxAttempts, cancellationToken: cancellationToken);

    protected override Task RunAsync(TrainingStepJob payload, JobAttempt attempt, CancellationToken cancellationToken) =>
        runner.RunAsync(payload, attempt, cancellationToken);

    protected override Task OnEndedAsync(TrainingStepJob payload, JobAttempt attempt, JobEnding ending, CancellationToken cancellationToken) =>
        runner.EndAsync(payload, ending, cancellationToken);
}
