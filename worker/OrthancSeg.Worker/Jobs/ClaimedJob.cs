namespace OrthancSeg.Worker.Jobs;

/// <summary>The id of a row in the jobs table; a type of its own so it is never confused with other ids.</summary>
internal readonly record struct JobId(long Value)
{
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>The result of an enqueue: the job's id, and whether this call created it or found it already there.</summary>
internal sealed record EnqueuedJob(JobId Id, bool Created);

/// <summary>
/// A job leased to one claimer for one attempt. (Id, LeaseOwner, Attempt) identifies the lease: once it
/// expires and someone else claims the job, completing or failing this lease is refused.
/// </summary>
internal sealed record ClaimedJob(
    JobId Id, string Kind, string IdempotencyKey, string PayloadJson, int Attempt, int MaxAttempts, string LeaseOwner, DateTimeOffset LeaseExpiresAt);

/// <summary>What a failure did to the job: it will run again at <see cref="RetryAt"/>, or it is now a dead letter.</summary>
internal sealed record JobFailure(bool Dead, DateTimeOffset? RetryAt);

/// <summary>The lease was lost (it expired and the job was claimed again, or it finished elsewhere); this outcome is not recorded.</summary>
internal sealed class JobLeaseLostException(string message) : Exception(message);
