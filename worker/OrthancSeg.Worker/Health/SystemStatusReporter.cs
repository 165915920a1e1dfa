using System.Diagnostics;
using System.Reflection;
using Npgsql;
using OrthancSeg.Worker.Orthanc;
using OrthancSeg.Worker.Persistence;

namespace OrthancSeg.Worker.Health;

/// <summary>The answer of one dependency check: what was checked and what it said (a version, or the error).</summary>
internal sealed record DependencyCheck(string Name, bool Healthy, string Detail);

internal sealed record SystemStatus(string WorkerVersion, DateTimeOffset StartedAt, IReadOnlyList<DependencyCheck> Dependencies);

/// <summary>
/// Asks each dependency right now (no cache): an admin running `orthancseg status` after fixing something
/// wants to see the fix. A dependency that is down is a result to report, not an error of the call.
/// </summary>
internal sealed class SystemStatusReporter(NpgsqlDataSource dataSource, OrthancClient orthanc)
{
    private static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(5);

    public static string WorkerVersion { get; } =
        typeof(SystemStatusReporter).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    public static DateTimeOffset StartedAt { get; } = new(Process.GetCurrentProcess().StartTime.ToUniversalTime(), TimeSpan.Zero);

    public async Task<SystemStatus> GetAsync(CancellationToken cancellationToken)
    {
        var checks = await Task.WhenAll(CheckPostgresAsync(cancellationToken), CheckOrthancAsync(cancellationToken));
        return new SystemStatus(WorkerVersion, StartedAt, checks);
    }

    private async Task<DependencyCheck> CheckPostgresAsync(CancellationToken cancellationToken)
    {
        var target = MigrationHostedService.Describe(dataSource);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(CheckTimeout);
        try
        {
            await using var command = dataSource.CreateCommand("SELECT current_setting('server_version')");
            var version = (string?)await command.ExecuteScalarAsync(timeout.Token);
            return new DependencyCheck("postgresql", true, $"PostgreSQL {version} at {target}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new DependencyCheck("postgresql", false, $"PostgreSQL at {target} did not answer within {CheckTimeout.TotalSeconds:0} s");
        }
        catch (NpgsqlException e)
        {
            return new DependencyCheck("postgresql", false, $"PostgreSQL at {target}: {e.Message}");
        }
    }

    private async Task<DependencyCheck> CheckOrthancAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(CheckTimeout);
        try
        {
            var system = await orthanc.GetSystemAsync(timeout.Token);
            return new DependencyCheck("orthanc", true, $"Orthanc {system.Version} (\"{system.Name}\", REST API {system.ApiVersion}) at {orthanc.BaseAddress}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new DependencyCheck("orthanc", false, $"Orthanc GET {new Uri(orthanc.BaseAddress, "system")} did not answer within {CheckTimeout.TotalSeconds:0} s");
        }
        catch (OrthancException e)
        {
            return new DependencyCheck("orthanc", false, e.Message);
        }
    }
}
