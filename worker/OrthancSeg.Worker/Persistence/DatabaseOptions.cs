using Microsoft.Extensions.Options;
using Npgsql;

namespace OrthancSeg.Worker.Persistence;

/// <summary>The worker's own PostgreSQL database (not Orthanc's index).</summary>
internal sealed class DatabaseOptions
{
    public const string Section = "OrthancSeg:Database";

    /// <summary>An Npgsql connection string; keep the password in a Passfile rather than here.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>How long start-up waits for PostgreSQL to accept connections before giving up.</summary>
    public TimeSpan StartupTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

internal sealed class DatabaseOptionsValidator : IValidateOptions<DatabaseOptions>
{
    private const string Example = "Host=127.0.0.1;Port=5432;Database=orthancseg;Username=orthancseg;Passfile=/path/to/pgpass";

    public ValidateOptionsResult Validate(string? name, DatabaseOptions options)
    {
        var key = $"{DatabaseOptions.Section}:ConnectionString";
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            failures.Add($"{key} is not set; set it to an Npgsql connection string, e.g. \"{Example}\"");
        }
        else
        {
            try
            {
                var parsed = new NpgsqlConnectionStringBuilder(options.ConnectionString);
                if (string.IsNullOrWhiteSpace(parsed.Host))
                {
                    failures.Add($"{key} names no Host; e.g. \"{Example}\"");
                }
            }
            catch (ArgumentException e)
            {
                failures.Add($"{key} is not a valid Npgsql connection string ({e.Message}); e.g. \"{Example}\"");
            }
        }
        if (options.StartupTimeout < TimeSpan.Zero)
        {
            failures.Add($"{DatabaseOptions.Section}:StartupTimeout is negative; use a duration such as \"00:00:30\"");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
