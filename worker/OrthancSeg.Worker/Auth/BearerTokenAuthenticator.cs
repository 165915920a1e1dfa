using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Configuration;

namespace OrthancSeg.Worker.Auth;

/// <summary>Who made a call: the name of the token it carried and that token's role.</summary>
internal sealed record Caller(string TokenName, Role Role);

/// <summary>
/// What the authenticator decided for one call. <see cref="Refusal"/> is null when the call may proceed; <see cref="Caller"/> is
/// known when the token matched (also when its role was not enough); <see cref="Rule"/> is null for the open services.
/// </summary>
internal sealed record AccessDecision(Caller? Caller, MethodRule? Rule, Status? Refusal);

/// <summary>
/// Decides whether a call may proceed from its method and its authorization metadata: the token must be one of the configured
/// ones, and its role must be allowed by the method's declared minimum role (<see cref="MethodPolicy"/>). Health and reflection
/// stay open because load balancers, grpcurl and `orthancseg health` call them without credentials; any other method outside the
/// contract needs an admin token, so nothing is open by accident.
/// </summary>
internal sealed class BearerTokenAuthenticator
{
    private const string BearerPrefix = "Bearer ";

    private static readonly HashSet<string> OpenServices = new(StringComparer.Ordinal)
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    };

    private readonly MethodPolicy _policy;

    // Tokens are compared as SHA-256 digests so that each comparison takes the same time whatever the length or content of
    // the token sent, and every configured token is compared on every call, so timing does not tell which one was close.
    private readonly (byte[] Digest, Caller Caller)[] _tokens;

    public BearerTokenAuthenticator(MethodPolicy policy, IEnumerable<(string Name, Role Role, string Token)> tokens)
    {
        _policy = policy;
        _tokens = tokens.Select(t =>
        {
            ArgumentException.ThrowIfNullOrEmpty(t.Token);
            return (Digest(t.Token), new Caller(t.Name, t.Role));
        }).ToArray();
    }

    /// <summary>The configured tokens, read from their files (validated on start by <see cref="AuthOptionsValidator"/>).</summary>
    public static BearerTokenAuthenticator FromOptions(AuthOptions options, MethodPolicy policy) => new(policy,
        AuthOptionsValidator.Configured(options).Select(t => (t.Name, t.Role, SecretFile.Read(t.Key, t.Path ?? "", privateOnly: true))));

    /// <param name="method">The gRPC method path, "/package.Service/Method".</param>
    /// <param name="authorization">The value of the "authorization" metadata entry, if any.</param>
    public AccessDecision Authorize(string method, string? authorization)
    {
        if (OpenServices.Contains(ServiceOf(method)))
        {
            return new AccessDecision(null, null, null);
        }
        var rule = _policy.Find(method) ?? new MethodRule(method, Role.Admin, ReadOnly: false);
        var expectation = $"{method} needs a token of role {Roles.AllowedFor(rule.MinimumRole)}, sent as metadata 'authorization: Bearer <token>'";

        if (string.IsNullOrEmpty(authorization))
        {
            return Refuse(null, StatusCode.Unauthenticated, $"No bearer token was sent. {expectation}");
        }
        if (!authorization.StartsWith(BearerPrefix, StringComparison.OrdinalIgnoreCase))
        {
            return Refuse(null, StatusCode.Unauthenticated, $"The authorization metadata is not of the form 'Bearer <token>'. {expectation}");
        }
        if (Identify(authorization[BearerPrefix.Length..].Trim()) is not { } caller)
        {
            return Refuse(null, StatusCode.Unauthenticated,
                $"The bearer token sent is none of the worker's tokens ({AuthOptions.Section} in its configuration). {expectation}");
        }
        return Roles.Allows(caller.Role, rule.MinimumRole)
            ? new AccessDecision(caller, rule, null)
            : Refuse(caller, StatusCode.PermissionDenied, $"The token '{caller.TokenName}' has the role {Roles.Name(caller.Role)}. {expectation}");

        AccessDecision Refuse(Caller? who, StatusCode code, string message) => new(who, rule, new Status(code, message));
    }

    private Caller? Identify(string token)
    {
        var digest = Digest(token);
        Caller? found = null;
        foreach (var (expected, caller) in _tokens)
        {
            if (CryptographicOperations.FixedTimeEquals(digest, expected))
            {
                found = caller;
            }
        }
        return found;
    }

    private static string ServiceOf(string method)
    {
        var trimmed = method.AsSpan().TrimStart('/');
        var slash = trimmed.IndexOf('/');
        return (slash < 0 ? trimmed : trimmed[..slash]).ToString();
    }

    private static byte[] Digest(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));
}
