using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Configuration;

namespace OrthancSeg.Worker.Auth;

/// <summary>Where the two bearer tokens live: one for the Orthanc bridge, one for admins.</summary>
internal sealed class AuthOptions
{
    public const string Section = "OrthancSeg:Auth";

    /// <summary>File holding the token the bridge sends on orthancseg.v1.Events calls.</summary>
    public string? BridgeTokenFile { get; set; }

    /// <summary>File holding the token admins (and the CLI) send on orthancseg.v1.Admin calls.</summary>
    public string? AdminTokenFile { get; set; }
}

internal sealed class AuthOptionsValidator : IValidateOptions<AuthOptions>
{
    /// <summary>Shorter tokens can be guessed; `openssl rand -hex 32` gives 64 characters.</summary>
    public const int MinimumTokenLength = 16;

    public ValidateOptionsResult Validate(string? name, AuthOptions options)
    {
        var failures = new List<string>();
        var bridge = Check($"{AuthOptions.Section}:BridgeTokenFile", options.BridgeTokenFile, failures);
        var admin = Check($"{AuthOptions.Section}:AdminTokenFile", options.AdminTokenFile, failures);
        if (bridge is not null && admin is not null && bridge == admin)
        {
            failures.Add($"{AuthOptions.Section}:BridgeTokenFile and {AuthOptions.Section}:AdminTokenFile hold the same token, "
                + "which would give the bridge admin rights; generate a separate admin token");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static string? Check(string key, string? path, List<string> failures)
    {
        if (SecretFile.Problem(key, path) is { } problem)
        {
            failures.Add(problem);
            return null;
        }
        var token = SecretFile.Read(key, path!);
        if (token.Length < MinimumTokenLength)
        {
            failures.Add($"{key}: the token in '{path}' has {token.Length} characters, fewer than {MinimumTokenLength}; "
                + "generate a longer one, e.g. `openssl rand -hex 32`");
            return null;
        }
        return token;
    }
}
