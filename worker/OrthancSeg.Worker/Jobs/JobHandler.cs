using Npgsql;

namespace OrthancSeg.Worker.Jobs;

/// <summary>
/// What the runner needs to know of a kind of job before any instance exists: its name in the jobs table, and the pool whose slots
/// it shares (recording kinds share one pool; an export, a training fold each have their own). Implemented with static members by
/// each handler, so a kind is declared once, beside the code that runs it.
/// </summary>
internal interface IJobKind
{
    /// <summary>The jobs.kind value, e.g. "snapshot".</summary>
    static abstract string Kind { get; }

    /// <summary>The pool of slots this kind runs in; see <see cref="JobsExtensions.AddJobPool"/>.</summary>
    static abstract string Pool { get; }
}

/// <summary>Runs the attempts of one kind of job; resolved in a fresh DI scope per attempt. Features derive from <see cref="JobHandler{TPayload}"/>.</summary>
internal interface IJobHandler
{
    Task RunAsync(JobAttempt attempt, CancellationToken cancellationToken);

    Task OnAttemptFailedAsync(JobAttempt attempt, string error, DateTimeOffset retryAt, CancellationToken cancellationToken);

    Task OnEndedAsync(JobAttempt attempt, JobEnding ending, CancellationToken cancellationToken);
}

/// <summary>How a job ended without succeeding: cancelled by an admin, or dead after its last attempt failed.</summary>
internal sealed record JobEnding(bool Cancelled, string Error);

/// <summary>
/// A kind of work with a typed payload. <see cref="RunAsync"/> does the work: it throws to fail the attempt (an outage of Orthanc or
/// PostgreSQL is recognised and does not spend the attempt), and it must stop soon after its token is cancelled (the job was cancelled,
/// its lease was lost, or the worker is stopping). The hooks keep the feature's own records in step with the job.
/// </summary>
internal abstract class JobHandler<TPayload> : IJobHandler where TPayload : class
{
    protected abstract Task RunAsync(TPayload payload, JobAttempt attempt, CancellationToken cancellationToken);

    /// <summary>After a failed attempt that will be retried at <paramref name="retryAt"/>.</summary>
    protected virtual Task OnAttemptFailedAsync(TPayload payload, JobAttempt attempt, string error, DateTimeOffset retryAt, CancellationToken cancellationToken) =>
        Task.CompletedTask;

    /// <summary>When the job ends cancelled or dead: mark the feature's record (a snapshot, a training run) the same way, clean up.</summary>
    protected virtual Task OnEndedAsync(TPayload payload, JobAttempt attempt, JobEnding ending, CancellationToken cancellationToken) => Task.CompletedTask;

    Task IJobHandler.RunAsync(JobAttempt attempt, CancellationToken cancellationToken) =>
        RunAsync(attempt.Payload<TPayload>(), attempt, cancellationToken);

    Task IJobHandler.OnAttemptFailedAsync(JobAttempt attempt, string error, DateTimeOffset retryAt, CancellationToken cancellationToken) =>
        OnAttemptFailedAsync(attempt.Payload<TPayload>(), attempt, error, retryAt, cancellationToken);

    Task IJobHandler.OnEndedAsync(JobAttempt attempt, JobEnding ending, CancellationToken cancellationToken) =>
        OnEndedAsync(attempt.Payload<TPayload>(), attempt, ending, cancellationToken);
}

/// <summary>
/// One attempt of a job, as its handler sees it: which job and attempt, and the fence. A handler whose work is published by a
/// database transaction calls <see cref="FenceAsync"/> in it before publishing and <see cref="CompleteAsync"/> before committing,
/// so the work and the job's success commit together, and only while this attempt still holds the lease.
/// </summary>
internal sealed class JobAttempt(ClaimedJob job)
{
    public ClaimedJob Job => job;

    public JobId JobId => job.Id;

    /// <summary>1 for the first attempt; hand-backs during outages do not count.</summary>
    public int Number => job.Attempt;

    public int MaxAttempts => job.MaxAttempts;

    /// <summary>True once the job's success was recorded inside the handler's own transaction.</summary>
    internal bool Completed { get; private set; }

    public TPayload Payload<TPayload>() where TPayload : class => JobPayload.Deserialize<TPayload>(job);

    /// <summary>
    /// Locks the job's row in <paramref name="transaction"/> and checks the lease: throws <see cref="JobLeaseLostException"/> when another attempt
    /// owns the job, and <see cref="JobCancelRequestedException"/> when an admin asked to cancel it.
    /// </summary>
    public Task FenceAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken) =>
        JobQueue.FenceAsync(job, connection, transaction, cancellationToken);

    /// <summary>Records the job's success in <paramref name="transaction"/>; it takes effect when the caller commits.</summary>
    public async Task CompleteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await JobQueue.CompleteAsync(job, connection, transaction, cancellationToken);
        Completed = true;
    }
}
