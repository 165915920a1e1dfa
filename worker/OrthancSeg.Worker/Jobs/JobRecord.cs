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
