using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using OrthancSeg.Worker.Configuration;

namespace OrthancSeg.Worker.Auth;

/// <summary>
/// Decides whether a call may proceed from its method name and its authorization metadata.
/// orthancseg.v1.Events takes the bridge token; every other OrthancSeg service takes the admin token, so a
/// service added later is closed until someone decides otherwise. Health and reflection stay open because
/// load balancers, grpcurl and `orthancseg health` call them without credentials.
/// </summary>
internal sealed class BearerTokenAuthenticator
{
    private const string EventsService = "orthancseg.v1.Events";
    private const string BearerPrefix = "Bearer ";

    private static readonly HashSet<string> OpenServices = new(StringComparer.Ordinal)
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    };

    // Tokens are compared as SHA-256 digests so that the comparison takes the same time whatever the
    // length or content of the token sent.
    private readonly byte[] _bridgeDigest;
    private readonly byte[] _adminDigest;

    public BearerTokenAuthenticator(string bridgeToken, string adminToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(bridgeToken);
        ArgumentException.ThrowIfNullOrEmpty(adminToken);
        _bridgeDigest = Digest(bridgeToken);
        _adminDigest = Digest(adminToken);
    }

    public static BearerTokenAuthenticator FromOptions(AuthOptions options) => new(
        SecretFile.Read($"{AuthOptions.Section}:BridgeTokenFile", options.BridgeTokenFile ?? ""),
        SecretFile.Read($"{AuthOptions.Section}:AdminTokenFile", options.AdminTokenFile ?? ""));

    /// <summary>Null when the call may proceed, otherwise the status to answer with.</summary>
    /// <param name="method">The gRPC method path, "/package.Service/Method".</param>
    /// <param name="authorization">The value of the "authorization" metadata entry, if any.</param>
    public Status? Authorize(string method, string? authorization)
    {
        var service = ServiceOf(method);
        if (OpenServices.Contains(service))
        {
            return null;
        }
        var (required, other, requiredKey) = service == EventsService
            ? (Role.Bridge, Role.Admin, "BridgeTokenFile")
            : (Role.Admin, Role.Bridge, "AdminTokenFile");
        var expectation = $"{service} requires the {Name(required)} token (the one in the file named by {AuthOptions.Section}:{requiredKey}) "
            + "as metadata 'authorization: Bearer <token>'";

        if (string.IsNullOrEmpty(authorization))
        {
            return new Status(StatusCode.Unauthenticated, $"No bearer token was sent. {expectation}");
        }
        if (!authorization.StartsWith(BearerPrefix, StringComparison.OrdinalIgnoreCase))
        {
            return new Status(StatusCode.Unauthenticated, $"The authorization metadata is not of the form 'Bearer <token>'. {expectation}");
        }
        var presented = Identify(authorization[BearerPrefix.Length..].Trim());
        if (presented == required)
        {
            return null;
        }
        return presented == other
            ? new Status(StatusCode.PermissionDenied, $"The {Name(other)} token is not accepted here. {expectation}")
            : new Status(StatusCode.Unauthenticated, $"The bearer token sent does not match. {expectation}");
    }

    private Role? Identify(string token)
    {
        var digest = Digest(token);
        // Both comparisons always run, so timing does not tell which token was close.
        var bridge = CryptographicOperations.FixedTimeEquals(digest, _bridgeDigest);
        var admin = CryptographicOperations.FixedTimeEquals(digest, _adminDigest);
        return admin ? Role.Admin : bridge ? Role.Bridge : null;
    }

    private static string ServiceOf(string method)
    {
        var trimmed = method.AsSpan().TrimStart('/');
        var slash = trimmed.IndexOf('/');
        return (slash < 0 ? trimmed : trimmed[..slash]).ToString();
    }

    private static byte[] Digest(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));

    private static string Name(Role role) => role == Role.Admin ? "admin" : "bridge";

    private enum Role
    {
        Bridge,
        Admin,
    }
}
