using System.CommandLine;

namespace OrthancSeg.Cli;

/// <summary>Options every command accepts (recursive), with defaults from the environment the stack's wrapper sets.</summary>
internal static class GlobalOptions
{
    public const string UrlVariable = "ORTHANCSEG_URL";
    public const string TokenFileVariable = "ORTHANCSEG_TOKEN_FILE";
    public const string DefaultUrl = "http://127.0.0.1:50051";

    public static Option<string> Url { get; } = new("--url")
    {
        Description = $"The worker's gRPC address [env {UrlVariable}]",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(UrlVariable) is { Length: > 0 } url ? url : DefaultUrl,
    };

    public static Option<string?> TokenFile { get; } = new("--token-file")
    {
        Description = $"File holding the admin token [env {TokenFileVariable}; the stack keeps it in .stack/secrets/admin-token]",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(TokenFileVariable) is { Length: > 0 } path ? path : null,
    };

    public static Option<bool> Json { get; } = new("--json")
    {
        Description = "Print machine-readable JSON instead of tables",
        Recursive = true,
    };
}
