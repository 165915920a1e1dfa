namespace OrthancSeg.Cli;

/// <summary>
/// Exit codes scripts can rely on, the same for every command (the table is in docs/admin.md). A script retries on
/// <see cref="Unreachable"/>, fixes its token on <see cref="Unauthenticated"/> or <see cref="PermissionDenied"/>, and its own
/// command line on <see cref="Usage"/>.
/// </summary>
internal static class ExitCodes
{
    /// <summary>The command did what was asked and everything it checked is healthy.</summary>
    public const int Ok = 0;

    /// <summary>
    /// The request was made, and what it reports failed: a job, export, training run or inference that failed, a health check
    /// that is not serving, a conversion that refused its input, an error inside the worker.
    /// </summary>
    public const int Unhealthy = 1;

    /// <summary>The command line is wrong: an unknown command or option, a missing or malformed value (also when the worker finds it invalid).</summary>
    public const int Usage = 2;

    /// <summary>`convert labels`: the label map is empty, so no SEG was written.</summary>
    public const int NothingWritten = 3;

    /// <summary>What the command names does not exist (a case, label, snapshot, run, model, job, workflow).</summary>
    public const int NotFound = 4;

    /// <summary>The thing exists but is in a state that does not allow this (already exists, already ended, paused).</summary>
    public const int Conflict = 5;

    /// <summary>No token, an unreadable one, or one the worker does not know.</summary>
    public const int Unauthenticated = 6;

    /// <summary>The token is known, but its role may not do this.</summary>
    public const int PermissionDenied = 7;

    /// <summary>The worker could not be asked, or could not ask what it needs: unreachable, TLS refused, no answer in time, Orthanc or PostgreSQL down.</summary>
    public const int Unreachable = 8;
}
