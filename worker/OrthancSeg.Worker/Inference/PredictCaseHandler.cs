using System.Globalization;
using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Inference;

/// <summary>The payload of an inference's job.</summary>
internal sealed record InferenceJob(long InferenceId);

/// <summary>The "inference" job: one prediction of one case (<see cref="CasePredictor"/>), in the "inference" pool.</summary>
internal sealed class PredictCaseHandler(CasePredictor predictor, InferenceStore store) : JobHandler<InferenceJob>, IJobKind
{
    public const string PoolName = "inference";

    public static string Kind => "inference";

    public static string Pool => PoolName;

    public static Task<EnqueuedJob> EnqueueAsync(JobQueue queue, long inferenceId, int maxAttempts, CancellationToken cancellationToken) =>
        queue.EnqueueAsync(Kind, string.Create(CultureInfo.InvariantCulture, $"inference-{inferenceId}"), new InferenceJob(inferenceId), maxAttempts,
            cancellationToken: cancellationToken);

    protected override Task RunAsync(InferenceJob payload, JobAttempt attempt, CancellationToken cancellationToken) =>
        predictor.RunAsync(payload.InferenceId, attempt, cancellationToken);

    protected override Task OnAttemptFailedAsync(InferenceJob payload, JobAttempt attempt, string error, DateTimeOffset retryAt,
        CancellationToken cancellationToken) =>
        store.NoteRetryAsync(payload.InferenceId, error, null, cancellationToken);

    protected override Task OnEndedAsync(InferenceJob payload, JobAttempt attempt, JobEnding ending, CancellationToken cancellationToken) =>
        predictor.EndAsync(payload.InferenceId, ending, cancellationToken);
}
