using System.Collections.Concurrent;
using System.Net.Sockets;
using Microsoft.Extensions.Options;
using Npgsql;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Orthanc;

namespace OrthancSeg.Worker.Jobs;

/// <summary>
/// Tells an outage from a failure, and says so once. An exception that means "Orthanc / PostgreSQL cannot be reached now" is an
/// outage: the job waits and retries without spending an attempt, with a backoff shared by every job waiting for that dependency.
/// The first job to meet an outage logs it; the first success after it logs the recovery and how long it lasted.
/// </summary>
internal sealed partial class DependencyOutages(IOptions<JobQueueOptions> options, ILogger<DependencyOutages> logger)
{
    private sealed record Outage(DateTimeOffset Since, int Waits);

    private readonly ConcurrentDictionary<string, Outage> _down = new(StringComparer.Ordinal);

    public const string Orthanc = "Orthanc";
    public const string PostgreSql = "PostgreSQL";

    /// <summary>The dependency whose outage <paramref name="exception"/> reports, or null when it is a failure of the work itself.</summary>
    public static string? DependencyOf(Exception exception)
    {
        var pending = new Stack<Exception>([exception]);
        while (pending.TryPop(out var e))
        {
            switch (e)
            {
                case DependencyUnavailableException unavailable:
                    return unavailable.Dependency;
                case OrthancException { IsUnavailable: true }:
                    return Orthanc;
                case PostgresException postgres:
                    // 08: connection exceptions, 57P: the server is shutting down or starting, 53: out of resources.
                    if (postgres.SqlState.StartsWith("08", StringComparison.Ordinal) || postgres.SqlState.StartsWith("57P", StringComparison.Ordinal)
                        || postgres.SqlState.StartsWith("53", StringComparison.Ordinal))
                    {
                        return PostgreSql;
                    }
                    break;
                case NpgsqlException npgsql when npgsql.IsTransient || npgsql.InnerException is SocketException or IOException or TimeoutException:
                    return PostgreSql;
            }
            if (e is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions)
                {
                    pending.Push(inner);
                }
            }
            else if (e.InnerException is { } innerException)
            {
                pending.Push(innerException);
            }
        }
        return null;
    }

    /// <summary>Records that <paramref name="dependency"/> is down and returns how long the job that met it should wait.</summary>
    public TimeSpan Down(string dependency, Exception exception)
    {
        var now = DateTimeOffset.UtcNow;
        var outage = _down.AddOrUpdate(dependency, _ => new Outage(now, 1), (_, o) => o with { Waits = o.Waits + 1 });
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

    public bool IsDown(string dependency) => _down.ContainsKey(dependency);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "{Dependency} is unreachable ({Reason}); jobs that need it wait and retry without spending attempts")]
    private static partial void LogDown(ILogger logger, string dependency, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Dependency} answers again after {Seconds:0.#} s; {Waits} job hand-back(s) during the outage")]
    private static partial void LogUp(ILogger logger, string dependency, double seconds, int waits);
}
