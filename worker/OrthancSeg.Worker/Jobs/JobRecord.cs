namespace OrthancSeg.Worker.Jobs;

/// <summary>A row of the jobs table as admins see it (orthancseg jobs list|show).</summary>
internal sealed record JobRecord(
    JobId Id,
    string Kind,
    string IdempotencyKey,
    string PayloadJson,
    string State,
    int Attempts,
    int MaxAttempts,
    int Waits,
    string? LeaseOwner,
    DateTimeOffset? LeaseExpiresAt,
    string? LastError,
    DateTimeOffset NotBefore,
    DateTimeOffset? CancelRequestedAt,
    DateTimeOffset CreatedAt,
    DateTimeOffset? StartedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? FinishedAt);

/// <summary>The unfinished jobs of one kind: waiting for a first attempt, waiting to retry, leased now, dead letters; and the oldest waiting one's enqueue time.</summary>
internal sealed record JobKindDepth(string Kind, long Queued, long Retrying, long Running, long Dead, DateTimeOffset? OldestWaitingSince);
