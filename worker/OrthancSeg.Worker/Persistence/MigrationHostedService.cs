using Microsoft.Extensions.Options;
using Npgsql;

namespace OrthancSeg.Worker.Persistence;

/// <summary>
/// Migrates the database before anything else starts: hosted services start in registration order and the
/// web server starts last, so no gRPC call and no background loop ever sees an old schema.
/// PostgreSQL that is still starting (the stack starts everything together) is waited for, up to
/// OrthancSeg:Database:StartupTimeout.
/// </summary>
internal sealed partial class MigrationHostedService(
    MigrationRunner runner, NpgsqlDataSource dataSource, IOptions<DatabaseOptions> options, TimeProvider time,
    ILogger<MigrationHostedService> logger) : IHostedService
{
    private static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(1);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var timeout = options.Value.StartupTimeout;
        var deadline = time.GetUtcNow() + timeout;
        var target = Describe(dataSource);
        while (true)
        {
            try
            {
                await runner.ApplyAsync(cancellationToken);
                return;
            }
            catch (NpgsqlException e) when (e.IsTransient && e is not PostgresException)
            {
                if (time.GetUtcNow() >= deadline)
                {
                    throw new InvalidOperationException(
                        $"PostgreSQL at {target} did not accept connections within {timeout} ({DatabaseOptions.Section}:StartupTimeout): {e.Message}", e);
                }
                LogWaiting(logger, target, e.Message);
                await Task.Delay(RetryInterval, time, cancellationToken);
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    internal static string Describe(NpgsqlDataSource dataSource)
    {
        var builder = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString);
        return $"{builder.Host}:{builder.Port}/{builder.Database}";
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "PostgreSQL at {Target} does not accept connections yet ({Error}); retrying")]
    private static partial void LogWaiting(ILogger logger, string target, string error);
}
