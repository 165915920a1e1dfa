using System.CommandLine;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Health.V1;
using Grpc.Net.Client;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Cli.Connection;

/// <summary>
/// A channel to the worker named by --url / ORTHANCSEG_URL. <see cref="Admin"/> and <see cref="Jobs"/> send the admin token (from
/// --token-file / ORTHANCSEG_TOKEN_FILE) as bearer metadata on every call; <see cref="Health"/> needs none.
/// </summary>
internal sealed class WorkerConnection : IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly string? _tokenFile;
    private CallInvoker? _invoker;

    private WorkerConnection(Uri address, string? tokenFile)
    {
        Address = address;
        _tokenFile = tokenFile;
        _channel = GrpcChannel.ForAddress(address);
    }

    public Uri Address { get; }

    public static WorkerConnection Open(ParseResult parseResult) =>
        new(ParseAddress(parseResult.GetValue(GlobalOptions.Url) ?? GlobalOptions.DefaultUrl), parseResult.GetValue(GlobalOptions.TokenFile));

    public Health.HealthClient Health => new(_channel);

    /// <summary>The admin client; reading the token happens here, so commands that need no token never ask for one.</summary>
    public Admin.AdminClient Admin => new(Authenticated);

    /// <summary>orthancseg.v1.JobService, with the admin token.</summary>
    public JobService.JobServiceClient Jobs => new(Authenticated);

    /// <summary>orthancseg.v1.TrainingService, with the admin token.</summary>
    public TrainingService.TrainingServiceClient Training => new(Authenticated);

    /// <summary>orthancseg.v1.ModelService, with the admin token.</summary>
    public ModelService.ModelServiceClient Models => new(Authenticated);

    /// <summary>orthancseg.v1.InferenceService, with the admin token.</summary>
    public InferenceService.InferenceServiceClient Inference => new(Authenticated);

    /// <summary>orthancseg.v1.LabelService, with the admin token.</summary>
    public LabelService.LabelServiceClient Labels => new(Authenticated);

    public void Dispose() => _channel.Dispose();

    /// <summary>Turns what went wrong on a call into a message that says what to check.</summary>
    public CliException Explain(RpcException e) => e.StatusCode switch
    {
        StatusCode.Unavailable => new(
            $"Cannot reach the worker at {Address}: {(e.Status.DebugException?.Message ?? e.Status.Detail).TrimEnd('.')}. Is it running? (check --url or {GlobalOptions.UrlVariable})",
            ExitCodes.Unreachable),
        StatusCode.DeadlineExceeded => new($"The worker at {Address} did not answer in time", ExitCodes.Unreachable),
        StatusCode.Unauthenticated or StatusCode.PermissionDenied => new(
            $"The worker at {Address} refused the admin token from '{_tokenFile}': {e.Status.Detail}", ExitCodes.Unreachable),
        _ => new($"The worker at {Address} answered {e.StatusCode}: {e.Status.Detail}", ExitCodes.Unhealthy),
    };

    private CallInvoker Authenticated => _invoker ??= CreateInvoker();

    private CallInvoker CreateInvoker()
    {
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
                $"No admin token: pass --token-file or set {GlobalOptions.TokenFileVariable} (the stack keeps it in .stack/secrets/admin-token)",
                ExitCodes.Unreachable);
        }
        string token;
        try
        {
            token = File.ReadAllText(_tokenFile).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"Cannot read the admin token file '{_tokenFile}': {e.Message}", ExitCodes.Unreachable);
        }
        return token.Length > 0 ? token : throw new CliException($"The admin token file '{_tokenFile}' is empty", ExitCodes.Unreachable);
    }

    private static Uri ParseAddress(string url)
    {
        // "host:port" is what people type; gRPC needs a scheme.
        var text = url.Contains("://", StringComparison.Ordinal) ? url : "http://" + url;
        return Uri.TryCreate(text, UriKind.Absolute, out var address) && (address.Scheme == Uri.UriSchemeHttp || address.Scheme == Uri.UriSchemeHttps)
            ? address
            : throw new CliException($"--url '{url}' is not a worker address; expected e.g. {GlobalOptions.DefaultUrl}", ExitCodes.Unreachable);
    }
}
