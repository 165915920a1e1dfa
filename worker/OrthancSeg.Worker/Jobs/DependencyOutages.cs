using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Errors;

namespace OrthancSeg.Worker.Jobs;

/// <summary>
/// Says an outage once. An exception that means "Orthanc / PostgreSQL / Slurm cannot be reached now" (<see cref="Outage.DependencyOf"/>)
/// is an outage: the job waits and retries without spending an attempt, with a backoff shared by every job waiting for that dependency.
/// The first job to meet an outage logs it; the first success after it logs the recovery and how long it lasted.
/// </summary>
internal sealed partial class DependencyOutages(IOptions<JobQueueOptions> options, ILogger<DependencyOutages> logger)
{
    private sealed record Episode(DateTimeOffset Since, int Waits);

    private readonly ConcurrentDictionary<string, Episode> _down = new(StringComparer.Ordinal);

    /// <summary>Records that <paramref name="dependency"/> is down and returns how long the job that met it should wait.</summary>
    public TimeSpan Down(string dependency, Exception exception)
    {
        var now = DateTimeOffset.UtcNow;
        var outage = _down.AddOrUpdate(dependency, _ => new Episode(now, 1), (_, o) => o with { Waits = o.Waits + 1 });
        if (outage.Waits == 1)
        {
            LogDown(logger, dependency, exception.Message);
        }
        return JobBackoff.Delay(outage.Waits, options.Value.OutageBaseDelay, options.Value.OutageMaxDelay);
    }

    /// <summary>Work succeeded: every dependency recorded as down evidently answers again.</summary>
    public void Up()
    {
        foreach (var dependency in _down.Keys)
        {
            Up(dependency);
        }
    }

    public void Up(string dependency)
    {
        if (_down.TryRemove(dependency, out var outage))
        {
            LogUp(logger, dependency, (DateTimeOffset.UtcNow - outage.Since).TotalSeconds, outage.Waits);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "{Dependency} is unreachable ({Reason}); jobs that need it wait and retry without spending attempts")]
    private static partial void LogDown(ILogger logger, string dependency, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Dependency} answers again after {Seconds:0.#} s; {Waits} job hand-back(s) during the outage")]
    private static partial void LogUp(ILogger logger, string dependency, double seconds, int waits);
}
