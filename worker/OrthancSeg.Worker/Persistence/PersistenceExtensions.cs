using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace OrthancSeg.Worker.Persistence;

internal static class PersistenceExtensions
{
    /// <summary>The database: validated options, one NpgsqlDataSource, migrations at start-up, and the health check.</summary>
    public static WebApplicationBuilder AddOrthancSegPersistence(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<DatabaseOptions>().BindConfiguration(DatabaseOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<DatabaseOptions>, DatabaseOptionsValidator>();
        builder.Services.AddSingleton(services =>
        {
            var dataSource = new NpgsqlDataSourceBuilder(services.GetRequiredService<IOptions<DatabaseOptions>>().Value.ConnectionString)
            {
                Name = "orthancseg-worker",
            };
            return dataSource.UseLoggerFactory(services.GetRequiredService<ILoggerFactory>()).Build();
        });
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<MigrationRunner>();
        builder.Services.AddHostedService<MigrationHostedService>();
        builder.Services.AddSingleton<ChangeCursor>();
        builder.Services.AddHealthChecks().AddCheck<PostgresHealthCheck>("postgresql", timeout: TimeSpan.FromSeconds(5));
        return builder;
    }
}
