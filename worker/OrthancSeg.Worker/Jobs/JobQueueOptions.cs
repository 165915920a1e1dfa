using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Jobs;

internal sealed class JobQueueOptions
{
    public const string Section = "OrthancSeg:Jobs";

    /// <summary>How long a claim lasts; a claimer that dies releases its job after this, long jobs extend it.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Attempts before a job becomes a dead letter, unless the job was enqueued with its own limit.</summary>
    public int MaxAttempts { get; set; } = 5;

    /// <summary>Wait after the first failure; doubles with every further failure.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest wait between attempts.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// How often a running job checks that it still holds its lease and whether it was cancelled; the lease is extended once less than
    /// two thirds of it remain. Also the longest a cancel waits to be noticed by another replica. A third of a shorter lease wins.
    /// </summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long the idle runner waits before looking for due jobs again (work enqueued by this process wakes it at once).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The first wait of a job that met an outage (Orthanc or PostgreSQL unreachable); doubles while the outage lasts.</summary>
    public TimeSpan OutageBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between two tries during an outage: how soon after a dependency is back its jobs go on.</summary>
    public TimeSpan OutageMaxDelay { get; set; } = TimeSpan.FromSeconds(15);
}

internal sealed class JobQueueOptionsValidator : IValidateOptions<JobQueueOptions>
{
    public ValidateOptionsResult Validate(string? name, JobQueueOptions options)
    {
        var failures = new List<string>();
        if (options.LeaseDuration <= TimeSpan.Zero)
        {
            failures.Add($"{JobQueueOptions.Section}:LeaseDuration must be positive, e.g. \"00:05:00\"");
        }
        if (options.MaxAttempts < 1)
        {
            failures.Add($"{JobQueueOptions.Section}:MaxAttempts is {options.MaxAttempts}; it must be at least 1");
        }
        if (options.RetryBaseDelay < TimeSpan.Zero)
        {
            failures.Add($"{JobQueueOptions.Section}:RetryBaseDelay is negative; use e.g. \"00:00:10\"");
        }
        if (options.RetryMaxDelay < options.RetryBaseDelay)
        {
            failures.Add($"{JobQueueOptions.Section}:RetryMaxDelay ({options.RetryMaxDelay}) is shorter than RetryBaseDelay ({options.RetryBaseDelay}); raise it");
        }
        if (options.HeartbeatInterval <= TimeSpan.Zero)
        {
            failures.Add($"{JobQueueOptions.Section}:HeartbeatInterval must be positive, e.g. \"00:00:01\"");
        }
        if (options.PollInterval <= TimeSpan.Zero)
        {
            failures.Add($"{JobQueueOptions.Section}:PollInterval must be positive, e.g. \"00:00:01\"");
        }
        if (options.OutageBaseDelay <= TimeSpan.Zero || options.OutageMaxDelay < options.OutageBaseDelay)
        {
            failures.Add($"{JobQueueOptions.Section}:OutageBaseDelay must be positive and OutageMaxDelay at least as long");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
