using Microsoft.Extensions.Options;
using Npgsql;
using OrthancSeg.Worker.Health;
using OrthancSeg.Worker.Orthanc;
using OrthancSeg.Worker.Persistence;

namespace OrthancSeg.Worker.Hosting;

internal static partial class HostingExtensions
{
    /// <summary>Exit code for configuration that fails validation: fix the settings, retrying will not help.</summary>
    public const int InvalidConfiguration = 2;

    /// <summary>Exit code for any other start-up or run failure.</summary>
    public const int Failed = 1;

    /// <summary>
    /// Runs the worker until it is stopped. A start-up failure (invalid configuration, database down) is logged
    /// as one readable line per problem and ends the process with a non-zero exit code instead of a stack dump.
    /// </summary>
    public static async Task<int> RunOrthancSegAsync(this WebApplication app)
    {
        await using (app)
        {
            try
            {
                // The host validates too, but only after building its hosted services, which stops at the first
                // bad option; validating first reports every problem at once.
                app.Services.GetService<IStartupValidator>()?.Validate();
            }
            catch (Exception e) when (e is OptionsValidationException or AggregateException)
            {
                var failures = e is AggregateException aggregate ? aggregate.Flatten().InnerExceptions : [e];
                foreach (var failure in failures.SelectMany(f => f is OptionsValidationException v ? v.Failures : [f.Message]))
                {
                    LogInvalidConfiguration(app.Logger, failure);
                }
                return InvalidConfiguration;
            }
            try
            {
                await app.StartAsync();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The host has logged the exception with its stack; this line says what to look at.
                LogStartFailed(app.Logger, e.Message);
                return Failed;
            }
            var database = MigrationHostedService.Describe(app.Services.GetRequiredService<NpgsqlDataSource>());
            var orthanc = app.Services.GetRequiredService<IOptions<OrthancOptions>>().Value.BaseAddress;
            LogReady(app.Logger, SystemStatusReporter.WorkerVersion, database, orthanc);
            await app.WaitForShutdownAsync();
            return 0;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "OrthancSeg worker {Version} ready: database {Database}, Orthanc {OrthancUrl}")]
    private static partial void LogReady(ILogger logger, string version, string database, Uri orthancUrl);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Invalid configuration: {Problem}")]
    private static partial void LogInvalidConfiguration(ILogger logger, string problem);

    [LoggerMessage(Level = LogLevel.Critical, Message = "The worker could not start: {Problem}")]
    private static partial void LogStartFailed(ILogger logger, string problem);
}
