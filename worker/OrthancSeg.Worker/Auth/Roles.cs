using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Worker.Auth;

/// <summary>The roles a token can carry, as people write them in configuration and as the contract's enum names them.</summary>
internal static class Roles
{
    /// <summary>The configuration names, in the order of the contract.</summary>
    public static IReadOnlyList<string> Names { get; } = ["bridge", "viewer", "operator", "admin"];

    public static string Name(Role role) => role switch
    {
        Role.Bridge => "bridge",
        Role.Viewer => "viewer",
        Role.Operator => "operator",
        Role.Admin => "admin",
        _ => "unspecified",
    };

    public static Role? Parse(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        "bridge" => Role.Bridge,
        "viewer" => Role.Viewer,
        "operator" => Role.Operator,
        "admin" => Role.Admin,
        _ => null,
    };

    /// <summary>
    /// Whether a token of <paramref name="held"/> may call a method that needs <paramref name="required"/>: viewer &lt; operator &lt; admin,
    /// and the bridge's methods are the bridge's alone (nobody else pushes Orthanc's events, and the bridge does nothing else).
    /// </summary>
    public static bool Allows(Role held, Role required) =>
        required == Role.Bridge || held == Role.Bridge ? held == required : held >= required;

    /// <summary>The roles that may call a method, for messages ("viewer, operator or admin").</summary>
    public static string AllowedFor(Role required)
    {
        var allowed = new[] { Role.Bridge, Role.Viewer, Role.Operator, Role.Admin }.Where(r => Allows(r, required)).Select(Name).ToList();
        return allowed.Count == 1 ? allowed[0] : $"{string.Join(", ", allowed[..^1])} or {allowed[^1]}";
    }
}
