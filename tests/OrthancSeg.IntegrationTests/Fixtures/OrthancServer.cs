using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>
/// A throwaway Orthanc configured exactly as `make up` configures the stack's: the configuration is
/// rendered from orthanc-config/orthanc.json.template by orthanc-config/render-orthanc-config.sh, with
/// the PostgreSQL index in a database of its own throwaway cluster, DICOMweb, GDCM, the Python plugin
/// loading the bridge when the checkout has it, HTTP authentication on, and free ports.
/// </summary>
public sealed class OrthancServer : IAsyncLifetime
{
    public const string Username = "orthancseg";

    /// <summary>Orthanc's own AE title: what a sender calls (DicomCheckCalledAet is on).</summary>
    public const string Aet = "ORTHANCSEGTEST";

    /// <summary>
    /// The one modality declared in the fixture's modalities file (the stack's .stack/modalities.json): storescu calling
    /// from 127.0.0.1 with this AE title may store; any other sender is refused.
    /// </summary>
    public const string DeclaredModalityAet = "TESTSCANNER";

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "orthancseg-orthanc-" + Guid.NewGuid().ToString("N")[..12]);
    private BackgroundProcess? _process;
    private string _config = "";

    private PostgresServer? _postgres;
    private string? _socket;

    /// <summary>Orthanc's index server: in the same namespace as Orthanc.</summary>
    public PostgresServer Postgres => _postgres ??= new PostgresServer { Namespace = Namespace };

    /// <summary>The two machines this Orthanc runs on one of (with <see cref="Namespace"/>), or null for this machine.</summary>
    public LinkedHosts? Hosts { get; init; }

    /// <summary>The namespace of <see cref="Hosts"/> Orthanc (and its PostgreSQL) run in; the test reaches it through a unix socket.</summary>
    public string? Namespace { get; init; }

    /// <summary>More KEY=VALUE for render-orthanc-config.sh, e.g. the link's LINK_USER, WORKER_HOST, WORKER_CA_FILE.</summary>
    public IReadOnlyList<string> ExtraConfiguration { get; init; } = [];

    public string Password { get; } = Guid.NewGuid().ToString("N");

    /// <summary>
    /// Whether the Python plugin runs the bridge (when the checkout has it). Without it the plugin stays idle,
    /// as render-orthanc-config.sh leaves it for an empty PYTHON_SCRIPT: Orthanc's own cost, for comparison.
    /// </summary>
    public bool LoadBridge { get; init; } = true;

    public int HttpPort { get; private set; }

    public int DicomPort { get; private set; }

    /// <summary>Where the bridge sends its events: a test that wants them starts a worker on this port.</summary>
    public int WorkerPort { get; private set; }

    /// <summary>The bridge's token; a worker that should accept the bridge's calls reads the same file.</summary>
    public string BridgeTokenFile => Path.Combine(_directory, "bridge-token");

    public Uri BaseUrl => new($"http://127.0.0.1:{HttpPort}/");

    /// <summary>Orthanc's index database: proof that metadata lives in PostgreSQL is read here.</summary>
    public string IndexConnectionString { get; private set; } = "";

    public string PasswordFile => Path.Combine(_directory, "orthanc-password");

    /// <summary>An HTTP client for Orthanc's REST API with the credentials set.</summary>
    public HttpClient CreateClient()
    {
        var client = _socket is null ? new HttpClient() : new HttpClient(LinkedHosts.Handler(_socket));
        client.BaseAddress = BaseUrl;
        client.Timeout = TimeSpan.FromSeconds(60);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Username}:{Password}")));
        return client;
    }

    public string LogTail() => _process?.LogTail() ?? "(Orthanc not started)";

    public async Task InitializeAsync()
    {
        await Postgres.InitializeAsync();
        Directory.CreateDirectory(_directory);
        await File.WriteAllTextAsync(PasswordFile, Password);
        // The worker refuses a token file that others can read, as the stack's are (mode 600).
        await WorkerProcess.WriteSecretAsync(BridgeTokenFile, Guid.NewGuid().ToString("N"));

        IndexConnectionString = await Postgres.CreateDatabaseAsync("orthanc");
        var database = new Npgsql.NpgsqlConnectionStringBuilder(IndexConnectionString).Database;
        var ports = ProcessRunner.FreePorts(3);
        (HttpPort, DicomPort, WorkerPort) = (ports[0], ports[1], ports[2]);
        var config = Path.Combine(_directory, "orthanc.json");
        var modalities = Path.Combine(_directory, "modalities.json");
        await File.WriteAllTextAsync(modalities, $$"""
            // As an operator declares a scanner (docs/operations.md, "Adding a scanner").
            { "test-scanner": ["{{DeclaredModalityAet}}", "127.0.0.1", 104] }
            """);
        await ProcessRunner.RunAsync(Path.Combine(RepositoryPaths.OrthancConfig, "render-orthanc-config.sh"),
        [
            config,
            $"HTTP_PORT={HttpPort}",
            $"DICOM_PORT={DicomPort}",
            $"DICOM_AET={Aet}",
            $"STORAGE_DIR={Path.Combine(_directory, "storage")}",
            $"HTTP_USER={Username}",
            $"HTTP_PASSWORD_FILE={PasswordFile}",
            "STABLE_AGE=2",
            $"PYTHON_SCRIPT={(LoadBridge && File.Exists(RepositoryPaths.BridgeScript) ? RepositoryPaths.BridgeScript : "")}",
            $"PG_URI=postgresql://orthancseg_test@127.0.0.1:{Postgres.Port}/{database}",
            // Nothing listens there unless a test starts a worker on it: the bridge must cope.
            $"WORKER_PORT={WorkerPort}",
            $"BRIDGE_TOKEN_FILE={BridgeTokenFile}",
            $"MODALITIES_FILE={modalities}",
            .. ExtraConfiguration,
        ], TimeSpan.FromSeconds(30));

        _config = config;
        await StartProcessAsync();
    }

    /// <summary>
    /// Stops Orthanc (SIGTERM, as systemd does) and starts it again on the same configuration, index and storage:
    /// what an operator's restart does to an upload burst, and to the stability Orthanc keeps only in memory.
    /// </summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        await StartProcessAsync();
    }

    /// <summary>Stops Orthanc (SIGTERM) and leaves it stopped: an outage of the PACS, until <see cref="StartAsync"/>.</summary>
    public async Task StopAsync()
    {
        if (_process is not null)
        {
            await _process.DisposeAsync();
            _process = null;
        }
    }

    /// <summary>Starts a stopped Orthanc again on the same configuration, index and storage.</summary>
    public Task StartAsync() => StartProcessAsync();

    private async Task StartProcessAsync()
    {
        if (Namespace is not null)
        {
            _socket ??= await (Hosts ?? throw new InvalidOperationException("An Orthanc in a namespace needs the Hosts it belongs to")).ForwardAsync(Namespace, HttpPort);
            var (program, arguments) = LinkedHosts.Command(Namespace, "/usr/sbin/Orthanc", [_config]);
            _process = BackgroundProcess.Start(program, arguments, Path.Combine(_directory, "orthanc.log"));
        }
        else
        {
            _process = BackgroundProcess.Start("/usr/sbin/Orthanc", [_config], Path.Combine(_directory, "orthanc.log"));
        }
        using var client = CreateClient();
        client.Timeout = TimeSpan.FromSeconds(5);
        await _process.WaitUntilReadyAsync(async () =>
        {
            try
            {
                using var response = await client.GetAsync(new Uri("system", UriKind.Relative));
                return response.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
            catch (TaskCanceledException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(120), $"Orthanc /system on port {HttpPort}");
    }

    /// <summary>Uploads DICOM files through the REST API, as `curl -X POST --data-binary @file /instances` does.</summary>
    public async Task<IReadOnlyList<string>> UploadAsync(IEnumerable<string> files)
    {
        using var client = CreateClient();
        var ids = new List<string>();
        foreach (var file in files)
        {
            using var content = new ByteArrayContent(await File.ReadAllBytesAsync(file));
            content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
            using var response = await client.PostAsync(new Uri("instances", UriKind.Relative), content);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, $"Orthanc refused {file}: {(int)response.StatusCode} {body}");
            using var json = JsonDocument.Parse(body);
            ids.Add(json.RootElement.GetProperty("ID").GetString()!);
        }
        return ids;
    }

    public async Task DisposeAsync()
    {
        if (_process is not null)
        {
            await _process.DisposeAsync();
            // Keep Orthanc's log where a person can read it after a run.
            File.Copy(_process.LogPath, Path.Combine(RepositoryPaths.Artifacts, $"orthanc-{HttpPort}.log"), overwrite: true);
        }
        await Postgres.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}

[CollectionDefinition(Name)]
public sealed class OrthancCollection : ICollectionFixture<OrthancServer>
{
    public const string Name = "Orthanc";
}
