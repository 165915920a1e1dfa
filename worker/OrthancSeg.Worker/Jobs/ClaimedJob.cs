namespace OrthancSeg.Worker.Jobs;

/// <summary>The id of a row in the jobs table; a type of its own so it is never confused with other ids.</summary>
internal readonly record struct JobId(long Value)
{
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>The result of an enqueue: the job's id, and whether this call created it (or revived a dead letter) or found it already there.</summary>
internal sealed record EnqueuedJob(JobId Id, bool Created);

/// <summary>
/// A job leased to one claimer for one attempt. (Id, LeaseOwner, Attempt) identifies the lease: once it
/// expires and someone else claims the job, completing or failing this lease is refused, and so is any
/// effect fenced by it (<see cref="JobQueue.FenceAsync"/>).
/// </summary>
/// <param name="Ending">
/// Set when the job was claimed only to be ended: "cancelled" (an admin asked), or "dead" (the lease of its last attempt
/// expired: its worker died). The runner then runs the handler's end hook, not the work.
/// </param>
internal sealed record ClaimedJob(
    JobId Id, string Kind, string IdempotencyKey, string PayloadJson, int Attempt, int MaxAttempts, string LeaseOwner, DateTimeOffset LeaseExpiresAt,
    string? Ending = null, string? LastError = null);

/// <summary>What a failure did to the job: it will run again at <see cref="RetryAt"/>, or it is now a dead letter.</summary>
internal sealed record JobFailure(bool Dead, DateTimeOffset? RetryAt);

/// <summary>What a heartbeat learnt: when the lease now ends, and whether an admin asked to cancel the job.</summary>
internal sealed record JobLease(DateTimeOffset ExpiresAt, bool CancelRequested);

/// <summary>The lease was lost (it expired and the job was claimed again, or it finished elsewhere); this outcome is not recorded.</summary>
internal sealed class JobLeaseLostException(string message) : Exception(message);

/// <summary>The fence found that an admin asked to cancel the job: its work is not published, and the job ends cancelled.</summary>
internal sealed class JobCancelRequestedException(string message) : OperationCanceledException(message);
