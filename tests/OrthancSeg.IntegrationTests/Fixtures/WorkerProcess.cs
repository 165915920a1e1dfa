using System.Security.Cryptography;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>
/// The built worker (`dotnet orthancseg-worker.dll`) as its own process: a fresh database in the shared
/// PostgreSQL cluster, fresh bearer tokens in temporary files, a free loopback port, and Orthanc pointed at a
/// port where nothing listens unless <see cref="StartAsync"/> is given other settings. Ready when the gRPC
/// health service says SERVING; stopped with SIGTERM (then killed) on dispose.
/// </summary>
public sealed class WorkerProcess : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private readonly PostgresServer _postgres;
    private readonly IReadOnlyDictionary<string, string> _settings;
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "orthancseg-worker-" + Guid.NewGuid().ToString("N")[..12]);
    private BackgroundProcess? _process;
    private LinkedHosts? _hosts;
    private string? _namespace;
    private string? _socket;

    /// <summary>Used by xunit as a class fixture: default settings, Orthanc unreachable.</summary>
    public WorkerProcess(PostgresServer postgres)
        : this(postgres, new Dictionary<string, string>())
    {
    }

    private WorkerProcess(PostgresServer postgres, IReadOnlyDictionary<string, string> settings)
    {
        _postgres = postgres;
        _settings = settings;
        // A test that needs the worker on a given port (where Orthanc's bridge sends) names it in the settings.
        if (settings.TryGetValue("Kestrel:Endpoints:Grpc:Url", out var url))
        {
            Port = new Uri(url).Port;
            Scheme = new Uri(url).Scheme;
        }
    }

    public int Port { get; } = ProcessRunner.FreePort();

    /// <summary>http, or https when the test configures a TLS endpoint.</summary>
    public string Scheme { get; } = "http";

    public string Address => $"{Scheme}://127.0.0.1:{Port}";

    public string AdminToken { get; } = NewToken();

    public string BridgeToken { get; } = NewToken();

    public string AdminTokenFile => Path.Combine(_directory, "admin-token");

    /// <summary>A token named "vera" with the viewer role (OrthancSeg:Auth:Tokens), for the role tests.</summary>
    public string ViewerToken { get; } = NewToken();

    public string ViewerTokenFile => Path.Combine(_directory, "viewer-token");

    /// <summary>A token named "olga" with the operator role.</summary>
    public string OperatorToken { get; } = NewToken();

    public string OperatorTokenFile => Path.Combine(_directory, "operator-token");

    public string BridgeTokenFile => Path.Combine(_directory, "bridge-token");

    public string LogFile => Path.Combine(_directory, "logs", "worker.log");

    /// <summary>The worker's own database.</summary>
    public string ConnectionString { get; private set; } = "";

    /// <summary>Everything the worker printed so far, for failure messages.</summary>
    public string Output => _process?.ReadLog() ?? "";

    /// <summary>The worker's process, for what only the operating system knows of it (its memory in /proc).</summary>
    public int ProcessId => _process?.Id ?? throw new InvalidOperationException("The worker is not running");

    public bool HasExited => _process?.HasExited ?? true;

    /// <summary>Starts a worker with extra configuration (keys as in appsettings.json, e.g. "OrthancSeg:Orthanc:Url").</summary>
    public static Task<WorkerProcess> StartAsync(PostgresServer postgres, IReadOnlyDictionary<string, string> settings, string? trustedCa = null) =>
        StartAsync(new WorkerProcess(postgres, settings) { TrustedCa = trustedCa });

    /// <summary>
    /// Starts a worker inside namespace <paramref name="ns"/> of <paramref name="hosts"/> (one of two machines); the test
    /// reaches its loopback gRPC port through a unix socket (<see cref="CreateChannel"/>).
    /// </summary>
    public static Task<WorkerProcess> StartAsync(PostgresServer postgres, IReadOnlyDictionary<string, string> settings, LinkedHosts hosts, string ns) =>
        StartAsync(new WorkerProcess(postgres, settings) { _hosts = hosts, _namespace = ns });

    private static async Task<WorkerProcess> StartAsync(WorkerProcess worker)
    {
        try
        {
            await worker.InitializeAsync();
        }
        catch
        {
            await worker.DisposeAsync();
            throw;
        }
        return worker;
    }

    /// <summary>PEM file of the CA that signed the worker's certificate, when the test configures a TLS endpoint.</summary>
    public string? TrustedCa { get; private init; }

    /// <summary>A channel to the worker; over TLS it trusts <see cref="TrustedCa"/> only.</summary>
    public GrpcChannel CreateChannel()
    {
        if (_socket is not null)
        {
            // In a namespace of LinkedHosts: the loopback port, through the forwarder's unix socket.
            return GrpcChannel.ForAddress(Address, new GrpcChannelOptions { HttpHandler = LinkedHosts.Handler(_socket) });
        }
        if (Scheme != "https")
        {
            return GrpcChannel.ForAddress(Address);
        }
        var authorities = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
        authorities.ImportFromPemFile(TrustedCa ?? throw new InvalidOperationException("A TLS worker needs the CA that signed its certificate"));
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
        {
            using var chain = new System.Security.Cryptography.X509Certificates.X509Chain();
            chain.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
            chain.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
            return certificate is not null && (errors & System.Net.Security.SslPolicyErrors.RemoteCertificateNameMismatch) == 0
                && chain.Build(new System.Security.Cryptography.X509Certificates.X509Certificate2(certificate));
        };
        return GrpcChannel.ForAddress(Address, new GrpcChannelOptions { HttpHandler = handler });
    }

    public static Metadata Bearer(string token) => new() { { "authorization", $"Bearer {token}" } };

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        await WriteSecretAsync(AdminTokenFile, AdminToken);
        await WriteSecretAsync(BridgeTokenFile, BridgeToken);
        await WriteSecretAsync(ViewerTokenFile, ViewerToken);
        await WriteSecretAsync(OperatorTokenFile, OperatorToken);
        ConnectionString = await _postgres.CreateDatabaseAsync("worker");

        var configuration = new Dictionary<string, string>
        {
            ["OrthancSeg:Database:ConnectionString"] = ConnectionString,
            ["OrthancSeg:Orthanc:Url"] = $"http://127.0.0.1:{ProcessRunner.FreePort()}",
            ["OrthancSeg:Auth:BridgeTokenFile"] = BridgeTokenFile,
            ["OrthancSeg:Auth:AdminTokenFile"] = AdminTokenFile,
            ["OrthancSeg:Auth:Tokens:vera:File"] = ViewerTokenFile,
            ["OrthancSeg:Auth:Tokens:vera:Role"] = "viewer",
            ["OrthancSeg:Auth:Tokens:olga:File"] = OperatorTokenFile,
            ["OrthancSeg:Auth:Tokens:olga:Role"] = "operator",
            ["OrthancSeg:Logging:File"] = LogFile,
            ["Kestrel:Endpoints:Grpc:Url"] = Address,
            ["Serilog:MinimumLevel:Default"] = "Debug",
        };
        foreach (var (key, value) in _settings)
        {
            configuration[key] = value;
        }

        var (program, arguments) = ("dotnet", new[] { BuildOutput.WorkerAssembly });
        if (_namespace is not null)
        {
            _socket = await (_hosts ?? throw new InvalidOperationException("A worker in a namespace needs the hosts it belongs to")).ForwardAsync(_namespace, Port);
            (program, arguments) = LinkedHosts.Command(_namespace, program, arguments);
        }
        _process = BackgroundProcess.Start(program, arguments, Path.Combine(_directory, "console.log"),
            configuration.ToDictionary(c => c.Key.Replace(":", "__", StringComparison.Ordinal), c => c.Value), _directory);

        using var channel = CreateChannel();
        var health = new Health.HealthClient(channel);
        await _process.WaitUntilReadyAsync(async () =>
        {
            try
            {
                var answer = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(2));
                return answer.Status == HealthCheckResponse.Types.ServingStatus.Serving;
            }
            catch (RpcException)
            {
                return false;
            }
        }, StartTimeout, $"the worker at {Address} to report SERVING");
    }

    /// <summary>SIGKILL, as a crash or the OOM killer would end it: no shutdown, no lease given back, nothing flushed.</summary>
    public Task KillAsync() => _process?.KillAsync() ?? Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_process is not null)
        {
            // SIGTERM first so the host shuts down the way it does in production, then the whole tree goes.
            await _process.DisposeAsync();
        }
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    internal static async Task WriteSecretAsync(string path, string secret)
    {
        // A trailing newline, as `openssl rand -hex 32 > file` leaves it.
        await File.WriteAllTextAsync(path, secret + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    private static string NewToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
}
