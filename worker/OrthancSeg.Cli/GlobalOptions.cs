using System.CommandLine;

namespace OrthancSeg.Cli;

/// <summary>Options every command accepts (recursive), with defaults from the environment the stack's wrapper sets.</summary>
internal static class GlobalOptions
{
    public const string UrlVariable = "ORTHANCSEG_URL";
    public const string TokenFileVariable = "ORTHANCSEG_TOKEN_FILE";
    public const string CaFileVariable = "ORTHANCSEG_CA_FILE";
    public const string DefaultUrl = "http://127.0.0.1:50051";

    public static Option<string> Url { get; } = new("--url")
    {
        Description = $"The worker's gRPC address [env {UrlVariable}]",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(UrlVariable) is { Length: > 0 } url ? url : DefaultUrl,
    };

    public static Option<string?> TokenFile { get; } = new("--token-file")
    {
        Description = $"File holding the bearer token (any role: viewer, operator, admin) [env {TokenFileVariable}; the stack keeps its admin token in .stack/secrets/admin-token]",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(TokenFileVariable) is { Length: > 0 } path ? path : null,
    };

    public static Option<string?> CaFile { get; } = new("--ca")
    {
        Description = $"PEM file of the certificate authority that signed the worker's TLS certificate, for an https:// --url [env {CaFileVariable}]",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(CaFileVariable) is { Length: > 0 } path ? path : null,
    };

    public static Option<bool> InsecurePlaintext { get; } = new("--insecure-plaintext")
    {
        Description = "Send the token over plain http:// to an address other than loopback, where anyone on the network can read it",
        Recursive = true,
    };

    public static Option<bool> Json { get; } = new("--json")
    {
        Description = "Print machine-readable JSON instead of tables",
        Recursive = true,
    };

    public static Option<bool> Wide { get; } = new("--wide")
    {
        Description = "Print every table cell whole instead of shortening free text to fit the terminal (COLUMNS sets the width for pipes)",
        Recursive = true,
    };
}
