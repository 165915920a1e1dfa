using System.Net.Sockets;
using Npgsql;
using OrthancSeg.Worker.Orthanc;

namespace OrthancSeg.Worker.Errors;

/// <summary>
/// Tells an outage from a failure: which dependency an exception says is down now (Orthanc not answering or answering 502/503/504,
/// PostgreSQL's connection lost or the server shutting down, an <see cref="UnavailableException"/>), or null when the failure is the
/// work's own. gRPC answers an outage with Unavailable; the job runner lets a job wait for it without spending an attempt.
/// </summary>
internal static class Outage
{
    public const string OrthancName = "Orthanc";
    public const string PostgreSql = "PostgreSQL";

    /// <summary>The dependency whose outage <paramref name="exception"/> reports, or null when it is a failure of the work itself.</summary>
    public static string? DependencyOf(Exception exception)
    {
        var pending = new Stack<Exception>([exception]);
        while (pending.TryPop(out var e))
        {
            switch (e)
            {
                case UnavailableException unavailable:
                    return unavailable.Dependency;
                case OrthancException { IsUnavailable: true }:
                    return OrthancName;
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

}
