using System.CommandLine;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Health.V1;
using Grpc.Net.Client;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Cli.Connection;

/// <summary>
/// A channel to the worker named by --url / ORTHANCSEG_URL. The service clients send the bearer token (from --token-file /
/// ORTHANCSEG_TOKEN_FILE) as metadata on every call; <see cref="Health"/> needs none. An https address is verified against the
/// system's trust store or against --ca / ORTHANCSEG_CA_FILE; a token is never sent in clear beyond loopback unless
/// --insecure-plaintext says so.
/// </summary>
internal sealed class WorkerConnection : IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly string? _tokenFile;
    private readonly bool _insecurePlaintext;
    private CallInvoker? _invoker;

    private WorkerConnection(Uri address, string? tokenFile, string? caFile, bool insecurePlaintext)
    {
        Address = address;
        _tokenFile = tokenFile;
        _insecurePlaintext = insecurePlaintext;
        _channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = Handler(address, caFile) });
    }

    public Uri Address { get; }

    public static WorkerConnection Open(ParseResult parseResult) =>
        new(ParseAddress(parseResult.GetValue(GlobalOptions.Url) ?? GlobalOptions.DefaultUrl), parseResult.GetValue(GlobalOptions.TokenFile),
            parseResult.GetValue(GlobalOptions.CaFile), parseResult.GetValue(GlobalOptions.InsecurePlaintext));

    public Health.HealthClient Health => new(_channel);

    // Each client reads the token when it is made, so commands that need no token never ask for one.

    /// <summary>orthancseg.v1.SystemService, with the token.</summary>
    public SystemService.SystemServiceClient Status => new(Authenticated);

    /// <summary>orthancseg.v1.WorkflowService, with the token.</summary>
    public WorkflowService.WorkflowServiceClient Workflows => new(Authenticated);

    /// <summary>orthancseg.v1.CaseService, with the token.</summary>
    public CaseService.CaseServiceClient Cases => new(Authenticated);

    /// <summary>orthancseg.v1.SnapshotService, with the token.</summary>
    public SnapshotService.SnapshotServiceClient Snapshots => new(Authenticated);

    /// <summary>orthancseg.v1.JobService, with the token.</summary>
    public JobService.JobServiceClient Jobs => new(Authenticated);

    /// <summary>orthancseg.v1.TrainingService, with the token.</summary>
    public TrainingService.TrainingServiceClient Training => new(Authenticated);

    /// <summary>orthancseg.v1.ModelService, with the token.</summary>
    public ModelService.ModelServiceClient Models => new(Authenticated);

    /// <summary>orthancseg.v1.InferenceService, with the token.</summary>
    public InferenceService.InferenceServiceClient Inference => new(Authenticated);

    /// <summary>orthancseg.v1.LabelService, with the token.</summary>
    public LabelService.LabelServiceClient Labels => new(Authenticated);

    /// <summary>orthancseg.v1.AuditService, with the token.</summary>
    public AuditService.AuditServiceClient Audit => new(Authenticated);

    public void Dispose() => _channel.Dispose();

    /// <summary>Turns what went wrong on a call into a message that says what to check.</summary>
    public CliException Explain(RpcException e) => e.StatusCode switch
    {
        // Grpc.Net.Client reports a TLS handshake this side refused as Internal; it is a connection that could not be made.
        _ when e.Status.DebugException is HttpRequestException { InnerException: System.Security.Authentication.AuthenticationException } tls => new(
            $"Cannot reach the worker at {Address}: its TLS certificate was not accepted ({Reason(tls)}). If a private CA signed it, pass that CA "
            + $"with --ca FILE or {GlobalOptions.CaFileVariable}",
            ExitCodes.Unreachable),
        // Any other call this side could not start (e.g. plain http:// to a TLS port: no HTTP/2 handshake) never reached the worker.
        not StatusCode.Unavailable when e.Status.DebugException is HttpRequestException failed => new(
            $"Cannot reach the worker at {Address}: {Reason(failed)}. Is it running, and does --url say https:// when it serves TLS?",
            ExitCodes.Unreachable),
        StatusCode.Unavailable when e.Status.DebugException is { } cause => new(
            $"Cannot reach the worker at {Address}: {Reason(cause)}. Is it running? (check --url or {GlobalOptions.UrlVariable})",
            ExitCodes.Unreachable),
        // The worker itself answered Unavailable: something it needs (Orthanc, PostgreSQL, Slurm) is down.
        StatusCode.Unavailable => new($"The worker at {Address} answered Unavailable: {e.Status.Detail}", ExitCodes.Unreachable),
        StatusCode.DeadlineExceeded => new($"The worker at {Address} did not answer in time", ExitCodes.Unreachable),
        StatusCode.Unauthenticated => new($"The worker at {Address} refused the token from '{_tokenFile}': {e.Status.Detail}", ExitCodes.Unauthenticated),
        StatusCode.PermissionDenied => new($"The token from '{_tokenFile}' may not do this: {e.Status.Detail}", ExitCodes.PermissionDenied),
        _ => new($"The worker at {Address} answered {e.StatusCode}: {e.Status.Detail}", ExitCode(e.StatusCode)),
    };

    /// <summary>The exit code of an answer the worker gave (<see cref="ExitCodes"/>; the table is in docs/admin.md).</summary>
    internal static int ExitCode(StatusCode status) => status switch
    {
        StatusCode.OK => ExitCodes.Ok,
        StatusCode.InvalidArgument or StatusCode.OutOfRange => ExitCodes.Usage,
        StatusCode.NotFound => ExitCodes.NotFound,
        StatusCode.AlreadyExists or StatusCode.FailedPrecondition or StatusCode.Aborted => ExitCodes.Conflict,
        StatusCode.Unauthenticated => ExitCodes.Unauthenticated,
        StatusCode.PermissionDenied => ExitCodes.PermissionDenied,
        StatusCode.Unavailable or StatusCode.DeadlineExceeded => ExitCodes.Unreachable,
        _ => ExitCodes.Unhealthy,
    };

    private CallInvoker Authenticated => _invoker ??= CreateInvoker();

    private CallInvoker CreateInvoker()
    {
        if (Address.Scheme == Uri.UriSchemeHttp && !IsLoopback(Address) && !_insecurePlaintext)
        {
            throw new CliException(
                $"Refusing to send the token in clear text to {Address}, which is not a loopback address: anyone on the network could read it. "
                + $"Use https:// (with --ca FILE or {GlobalOptions.CaFileVariable} if the worker's certificate is not signed by a CA this machine trusts), "
                + "or pass --insecure-plaintext if the network itself is private and encrypted",
                ExitCodes.Usage);
        }
        var authorization = $"Bearer {ReadToken()}";
        return _channel.Intercept(metadata =>
        {
            metadata.Add("authorization", authorization);
            return metadata;
        });
    }

    private string ReadToken()
    {
        if (string.IsNullOrWhiteSpace(_tokenFile))
        {
            throw new CliException(
                $"No token: pass --token-file or set {GlobalOptions.TokenFileVariable} (the stack keeps its admin token in .stack/secrets/admin-token)",
                ExitCodes.Unauthenticated);
        }
        string token;
        try
        {
            token = File.ReadAllText(_tokenFile).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"Cannot read the token file '{_tokenFile}': {e.Message}", ExitCodes.Unauthenticated);
        }
        return token.Length > 0 ? token : throw new CliException($"The token file '{_tokenFile}' is empty", ExitCodes.Unauthenticated);
    }

    /// <summary>For https with --ca: the worker's certificate must chain to that CA (and only that one) and name the host dialled.</summary>
    private static SocketsHttpHandler Handler(Uri address, string? caFile)
    {
        var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true };
        // A CA file set in the environment for a remote worker must not stop commands against a local plain one.
        if (caFile is null || address.Scheme != Uri.UriSchemeHttps)
        {
            return handler;
        }
        X509Certificate2Collection authorities = [];
        try
        {
            authorities.ImportFromPemFile(caFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new CliException($"Cannot read the CA certificate file '{caFile}' (--ca / {GlobalOptions.CaFileVariable}): {e.Message}", ExitCodes.Usage);
        }
        if (authorities.Count == 0)
        {
            throw new CliException($"The CA certificate file '{caFile}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)", ExitCodes.Usage);
        }
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
        {
            if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
            {
                return false;
            }
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return chain.Build(new X509Certificate2(certificate));
        };
        return handler;
    }

    private static string Reason(Exception e)
    {
        // A TLS failure is wrapped twice (HttpRequestException, then AuthenticationException): the innermost says why.
        var inner = e;
        while (inner.InnerException is not null)
        {
            inner = inner.InnerException;
        }
        var reason = inner == e ? e.Message : $"{e.Message} ({inner.Message})";
        return reason.TrimEnd('.');
    }

    private static bool IsLoopback(Uri address) =>
        address.IsLoopback || (IPAddress.TryParse(address.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    private static Uri ParseAddress(string url)
    {
        // "host:port" is what people type; gRPC needs a scheme.
        var text = url.Contains("://", StringComparison.Ordinal) ? url : "http://" + url;
        return Uri.TryCreate(text, UriKind.Absolute, out var address) && (address.Scheme == Uri.UriSchemeHttp || address.Scheme == Uri.UriSchemeHttps)
            ? address
            : throw new CliException($"--url '{url}' is not a worker address; expected e.g. {GlobalOptions.DefaultUrl}", ExitCodes.Usage);
    }
}
