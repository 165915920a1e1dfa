using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Configuration;

namespace OrthancSeg.Worker.Auth;

/// <summary>
/// Where the bearer tokens live. BridgeTokenFile and AdminTokenFile are the two tokens every installation has (named "bridge"
/// and "admin", with those roles); Tokens adds any number of named tokens with a role each, e.g. one per person:
/// <c>OrthancSeg__Auth__Tokens__alice__File=/etc/orthancseg/alice.token</c>, <c>OrthancSeg__Auth__Tokens__alice__Role=operator</c>.
/// </summary>
internal sealed class AuthOptions
{
    public const string Section = "OrthancSeg:Auth";

    /// <summary>File holding the token the bridge sends on orthancseg.v1.Events calls (token name "bridge", role bridge).</summary>
    public string? BridgeTokenFile { get; set; }

    /// <summary>File holding the token with every right (token name "admin", role admin), the one the stack's CLI uses.</summary>
    public string? AdminTokenFile { get; set; }

    /// <summary>More tokens, by name: the name is what the audit log records for the token's calls.</summary>
    public Dictionary<string, TokenOptions> Tokens { get; } = new(StringComparer.Ordinal);
}

/// <summary>One named token: the file holding it and its role (bridge, viewer, operator or admin).</summary>
internal sealed class TokenOptions
{
    public string? File { get; set; }

    public string? Role { get; set; }
}

/// <summary>One token as the worker holds it: its name, its role, and the key under which it was configured (for messages).</summary>
internal sealed record ConfiguredToken(string Name, Role Role, string Key, string? Path);

internal sealed partial class AuthOptionsValidator : IValidateOptions<AuthOptions>
{
    /// <summary>Shorter tokens can be guessed; `openssl rand -hex 32` gives 64 characters.</summary>
    public const int MinimumTokenLength = 16;

    public ValidateOptionsResult Validate(string? name, AuthOptions options)
    {
        var failures = new List<string>();
        var read = new List<(ConfiguredToken Token, string Secret)>();
        foreach (var token in Configured(options, failures))
        {
            if (Check(token, failures) is { } secret)
            {
                read.Add((token, secret));
            }
        }
        try
        {
            // The rules come from the contract, not from options, but this is where start-up reports what is wrong.
            MethodPolicy.FromContracts();
        }
        catch (InvalidOperationException e)
        {
            failures.Add(e.Message);
        }
        foreach (var group in read.GroupBy(r => r.Secret, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            failures.Add($"{string.Join(" and ", group.Select(g => g.Token.Key))} hold the same token, so a call could not tell "
                + $"which of them ({string.Join(", ", group.Select(g => $"{g.Token.Name}: {Roles.Name(g.Token.Role)}"))}) made it; "
                + "generate a separate token for each");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>The tokens the options name, in a stable order; problems with names and roles are added to <paramref name="failures"/>.</summary>
    public static IReadOnlyList<ConfiguredToken> Configured(AuthOptions options, List<string>? failures = null)
    {
        var tokens = new List<ConfiguredToken>
        {
            new("bridge", Role.Bridge, $"{AuthOptions.Section}:BridgeTokenFile", options.BridgeTokenFile),
            new("admin", Role.Admin, $"{AuthOptions.Section}:AdminTokenFile", options.AdminTokenFile),
        };
        foreach (var (tokenName, token) in options.Tokens.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            var key = $"{AuthOptions.Section}:Tokens:{tokenName}";
            if (!TokenName().IsMatch(tokenName))
            {
                failures?.Add($"{key}: the name '{tokenName}' is not a token name; use lower-case letters, digits, '.', '_' and '-' (it appears in the audit log)");
                continue;
            }
            if (tokens.Any(t => string.Equals(t.Name, tokenName, StringComparison.OrdinalIgnoreCase)))
            {
                failures?.Add($"{key}: the name '{tokenName}' is taken by {AuthOptions.Section}:{(tokenName.Equals("bridge", StringComparison.OrdinalIgnoreCase) ? "BridgeTokenFile" : "AdminTokenFile")}; choose another");
                continue;
            }
            if (Roles.Parse(token.Role) is not { } role)
            {
                failures?.Add($"{key}:Role is {(string.IsNullOrWhiteSpace(token.Role) ? "not set" : $"'{token.Role}'")}; set it to one of {string.Join(", ", Roles.Names)}");
                continue;
            }
            tokens.Add(new ConfiguredToken(tokenName, role, $"{key}:File", token.File));
        }
        return tokens;
    }

    private static string? Check(ConfiguredToken token, List<string> failures)
    {
        if (SecretFile.Problem(token.Key, token.Path, privateOnly: true) is { } problem)
        {
            failures.Add(problem);
            return null;
        }
        var secret = SecretFile.Read(token.Key, token.Path!, privateOnly: true);
        if (secret.Length < MinimumTokenLength)
        {
            failures.Add($"{token.Key}: the token in '{token.Path}' has {secret.Length} characters, fewer than {MinimumTokenLength}; "
                + "generate a longer one, e.g. `openssl rand -hex 32`");
            return null;
        }
        if (secret.Any(char.IsWhiteSpace))
        {
            failures.Add($"{token.Key}: the token in '{token.Path}' contains white space; a token is one word, e.g. from `openssl rand -hex 32`");
            return null;
        }
        return secret;
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$")]
    private static partial Regex TokenName();
}
