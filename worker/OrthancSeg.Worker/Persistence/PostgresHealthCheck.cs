using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace OrthancSeg.Worker.Persistence;

/// <summary>The worker can do nothing useful without its database, so it is SERVING only while PostgreSQL answers.</summary>
internal sealed class PostgresHealthCheck(NpgsqlDataSource dataSource) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var command = dataSource.CreateCommand("SELECT 1");
            await command.ExecuteScalarAsync(cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            return HealthCheckResult.Unhealthy($"PostgreSQL at {MigrationHostedService.Describe(dataSource)} does not answer: {e.Message}", e);
        }
    }
}
