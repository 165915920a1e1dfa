using System.Net;
using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Configuration;

namespace OrthancSeg.Worker.Auth;

/// <summary>
/// How far the worker's gRPC endpoints may be reached without TLS. The endpoints themselves are Kestrel's
/// (<c>Kestrel:Endpoints:Grpc:Url</c>; for TLS an https URL with <c>Certificate:Path</c> and <c>Certificate:KeyPath</c>, PEM files).
/// </summary>
internal sealed class TransportOptions
{
    public const string Section = "OrthancSeg:Transport";

    /// <summary>
    /// Serve plain HTTP/2 (h2c) on an address other than loopback. Off by default: bearer tokens would cross the network in
    /// clear. Turn it on only behind something that encrypts the traffic itself (a TLS-terminating proxy on the same host, a VPN).
    /// </summary>
    public bool AllowPlaintextBeyondLoopback { get; set; }
}

/// <summary>Checks Kestrel's endpoints before they bind: plain HTTP on loopback only (unless allowed), TLS with a certificate and a private key.</summary>
internal sealed class TransportOptionsValidator(IConfiguration configuration) : IValidateOptions<TransportOptions>
{
    public ValidateOptionsResult Validate(string? name, TransportOptions options)
    {
        var failures = new List<string>();
        foreach (var endpoint in configuration.GetSection("Kestrel:Endpoints").GetChildren())
        {
            var key = $"Kestrel:Endpoints:{endpoint.Key}";
            var url = endpoint["Url"];
            if (string.IsNullOrWhiteSpace(url))
            {
                continue;
            }
            // Kestrel's wildcards ("*", "+") are not URIs' host names; they bind every address.
            if (!Uri.TryCreate(url.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal),
                    UriKind.Absolute, out var uri))
            {
                failures.Add($"{key}:Url '{url}' is not a URL; expected e.g. http://127.0.0.1:50051 or https://0.0.0.0:50051");
                continue;
            }
            if (uri.Scheme == Uri.UriSchemeHttp && !IsLoopback(uri) && !options.AllowPlaintextBeyondLoopback)
            {
                failures.Add($"{key}:Url '{url}' serves plain HTTP beyond loopback, where bearer tokens would cross the network in clear; "
                    + $"use https with {key}:Certificate:Path and :KeyPath (docs/operations.md, TLS), or set {TransportOptions.Section}:AllowPlaintextBeyondLoopback "
                    + "to true if something else encrypts the traffic");
            }
            else if (uri.Scheme == Uri.UriSchemeHttps)
            {
                var certificate = endpoint["Certificate:Path"] ?? configuration["Kestrel:Certificates:Default:Path"];
                var privateKey = endpoint["Certificate:KeyPath"] ?? configuration["Kestrel:Certificates:Default:KeyPath"];
                if (string.IsNullOrWhiteSpace(certificate))
                {
                    failures.Add($"{key}:Url '{url}' asks for TLS but {key}:Certificate:Path is not set; point it at the server certificate (PEM) "
                        + "and :KeyPath at its private key");
                }
                else if (!File.Exists(certificate))
                {
                    failures.Add($"{key}:Certificate:Path: file '{certificate}' was not found");
                }
                if (!string.IsNullOrWhiteSpace(privateKey) && SecretFile.Problem($"{key}:Certificate:KeyPath", privateKey, privateOnly: true) is { } problem)
                {
                    failures.Add(problem);
                }
            }
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static bool IsLoopback(Uri uri) =>
        uri.IsLoopback || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));
}
