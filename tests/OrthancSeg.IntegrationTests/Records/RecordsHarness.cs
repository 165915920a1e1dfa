using System.Net.Http.Headers;
using System.Text.Json;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Npgsql;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.Tests.Support;

namespace OrthancSeg.IntegrationTests.Records;

/// <summary>
/// One test's world for recording: a fresh Orthanc as the stack configures it (PostgreSQL index, StableAge 2 s,
/// the bridge loaded and pushing to the worker's port) and the built worker with its own database in that
/// Orthanc's PostgreSQL, both real processes. Events reach the worker twice over: the bridge's pushes and the
/// worker's catch-up of Orthanc's change log. The worker can be stopped and started again on the same
/// database, as an operator would.
/// </summary>
internal sealed class RecordsHarness : IAsyncDisposable
{
    private readonly OrthancServer _orthanc = new();
    private readonly List<WorkerProcess> _replicas = [];
    private PostgresServer? _workerDatabaseServer;
    private WorkerProcess? _worker;
    private GrpcChannel? _channel;
    private string _stoppedOutput = "";

    private readonly IReadOnlyDictionary<string, string> _workerSettings;

    private readonly bool _ownDatabaseServer;

    private RecordsHarness(IReadOnlyDictionary<string, string>? workerSettings, bool ownDatabaseServer)
    {
        _workerSettings = workerSettings ?? new Dictionary<string, string>();
        _ownDatabaseServer = ownDatabaseServer;
    }

    public string DatabaseConnectionString { get; private set; } = "";

    public string AdminTokenFile { get; } = Path.Combine(Path.GetTempPath(), "orthancseg-admin-" + Guid.NewGuid().ToString("N")[..12]);

    public string BridgeTokenFile => _orthanc.BridgeTokenFile;

    /// <summary>The Orthanc the bridge runs in, for fixtures that stand in front of it (OHIF).</summary>
    public OrthancServer OrthancServer => _orthanc;

    public HttpClient Orthanc { get; private set; } = null!;

    /// <summary>The running worker's process.</summary>
    public WorkerProcess Worker => _worker ?? throw new InvalidOperationException("The worker is not running");

    /// <summary>The running worker's gRPC address, for the CLI.</summary>
    public string WorkerAddress => _worker?.Address ?? throw new InvalidOperationException("The worker is not running");

    public WorkflowService.WorkflowServiceClient Workflows { get; private set; } = null!;

    public CaseService.CaseServiceClient Cases { get; private set; } = null!;

    public LabelService.LabelServiceClient Labels { get; private set; } = null!;

    public SnapshotService.SnapshotServiceClient Snapshots { get; private set; } = null!;

    public Events.EventsClient Events { get; private set; } = null!;

    /// <summary>
    /// Starts Orthanc and the worker; <paramref name="workerSettings"/> adds to or overrides the worker's configuration. With
    /// <paramref name="ownDatabaseServer"/> the worker's database lives on a PostgreSQL server of its own (not Orthanc's index server),
    /// so a test can restart it without touching Orthanc.
    /// </summary>
    public static async Task<RecordsHarness> StartAsync(IReadOnlyDictionary<string, string>? workerSettings = null, bool ownDatabaseServer = false)
    {
        var harness = new RecordsHarness(workerSettings, ownDatabaseServer);
        try
        {
            await harness.InitializeAsync();
        }
        catch
        {
            await harness.DisposeAsync();
            throw;
        }
        return harness;
    }

    private async Task InitializeAsync()
    {
        // The bridge's gRPC modules are generated, not committed.
        await ProcessRunner.RunAsync(Path.Combine(RepositoryPaths.Root, "plugin-bridge", "generate.sh"), [], TimeSpan.FromSeconds(120));
        await _orthanc.InitializeAsync();
        Orthanc = _orthanc.CreateClient();
        await WorkerProcess.WriteSecretAsync(AdminTokenFile, Guid.NewGuid().ToString("N"));
        if (_ownDatabaseServer)
        {
            _workerDatabaseServer = new PostgresServer();
            await _workerDatabaseServer.InitializeAsync();
        }
        DatabaseConnectionString = await WorkerDatabaseServer.CreateDatabaseAsync("records");
        await StartWorkerAsync();
    }

    public static CallInvoker WithToken(GrpcChannel channel, string token) =>
        channel.Intercept(metadata =>
        {
            metadata.Add("authorization", $"Bearer {token}");
            return metadata;
        });

    public GrpcChannel Channel => _channel!;

    public JobService.JobServiceClient Jobs { get; private set; } = null!;

    /// <summary>The PostgreSQL server holding the worker's database.</summary>
    public PostgresServer WorkerDatabaseServer => _workerDatabaseServer ?? _orthanc.Postgres;

    /// <summary>A replica: a second worker process on the same database and Orthanc, sharing the job queue, on a gRPC port of its own.</summary>
    public async Task<(WorkerProcess Worker, SnapshotService.SnapshotServiceClient Snapshots)> StartReplicaAsync()
    {
        var settings = WorkerSettings();
        settings.Remove("Kestrel:Endpoints:Grpc:Url");
        var replica = await WorkerProcess.StartAsync(WorkerDatabaseServer, settings);
        _replicas.Add(replica);
        var channel = replica.CreateChannel();
        return (replica, new SnapshotService.SnapshotServiceClient(WithToken(channel, (await File.ReadAllTextAsync(AdminTokenFile)).Trim())));
    }

    public async Task StartWorkerAsync()
    {
        if (_worker is not null)
        {
            throw new InvalidOperationException("The worker is already running");
        }
        _worker = await WorkerProcess.StartAsync(WorkerDatabaseServer, WorkerSettings());
        _channel?.Dispose();
        _channel = _worker.CreateChannel();
        var admin = WithToken(_channel, (await File.ReadAllTextAsync(AdminTokenFile)).Trim());
        Workflows = new WorkflowService.WorkflowServiceClient(admin);
        Cases = new CaseService.CaseServiceClient(admin);
        Labels = new LabelService.LabelServiceClient(admin);
        Snapshots = new SnapshotService.SnapshotServiceClient(admin);
        Jobs = new JobService.JobServiceClient(admin);
        Events = new Events.EventsClient(WithToken(_channel, (await File.ReadAllTextAsync(BridgeTokenFile)).Trim()));
    }

    /// <summary>The host's fixture, pointed at this test's database and token files, so a restarted worker is the same worker.</summary>
    private Dictionary<string, string> WorkerSettings()
    {
        var settings = new Dictionary<string, string>
        {
            ["OrthancSeg:Database:ConnectionString"] = DatabaseConnectionString,
            ["OrthancSeg:Orthanc:Url"] = _orthanc.BaseUrl.ToString(),
            ["OrthancSeg:Orthanc:Username"] = OrthancServer.Username,
            ["OrthancSeg:Orthanc:PasswordFile"] = _orthanc.PasswordFile,
            ["Kestrel:Endpoints:Grpc:Url"] = $"http://127.0.0.1:{_orthanc.WorkerPort}",
            ["OrthancSeg:Auth:BridgeTokenFile"] = BridgeTokenFile,
            ["OrthancSeg:Auth:AdminTokenFile"] = AdminTokenFile,
            ["OrthancSeg:Records:CatchUpInterval"] = "00:00:01",
            ["OrthancSeg:Jobs:PollInterval"] = "00:00:00.200",
            ["OrthancSeg:Records:NewSeriesCheckDelay"] = "00:00:03",
            ["OrthancSeg:Jobs:RetryBaseDelay"] = "00:00:01",
            ["OrthancSeg:Jobs:RetryMaxDelay"] = "00:00:05",
            ["Serilog:MinimumLevel:Default"] = "Information",
        };
        foreach (var (key, value) in _workerSettings)
        {
            settings[key] = value;
        }
        return settings;
    }

    /// <summary>Restarts Orthanc; series that were not stable yet will never get a StableSeries change.</summary>
    public Task RestartOrthancAsync() => _orthanc.RestartAsync();

    public async Task StopWorkerAsync()
    {
        if (_worker is null)
        {
            return;
        }
        _stoppedOutput += _worker.Output;
        await _worker.DisposeAsync();
        _worker = null;
    }

    /// <summary>Kills the worker with SIGKILL (a crash), keeping its output for failure messages.</summary>
    public async Task KillWorkerAsync()
    {
        if (_worker is null)
        {
            return;
        }
        await _worker.KillAsync();
        await StopWorkerAsync();
    }

    public async Task<bool> WorkerIsServingAsync()
    {
        var health = await new Health.HealthClient(_channel).CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
        return health.Status == HealthCheckResponse.Types.ServingStatus.Serving;
    }

    public Task<string> UploadAsync(DicomFile file) => UploadAsync(DicomWriter.ToBytes(file));

    /// <summary>Stores a Part 10 file as it is, e.g. one compressed by DCMTK.</summary>
    public async Task<string> UploadAsync(byte[] part10)
    {
        using var content = new ByteArrayContent(part10);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
        using var response = await Orthanc.PostAsync(new Uri("instances", UriKind.Relative), content);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"Orthanc refused an upload: {(int)response.StatusCode} {body}");
        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("ID").GetString()!;
    }

    public async Task UploadSeriesAsync(TestSeries series)
    {
        foreach (var file in series.Files())
        {
            await UploadAsync(file);
        }
    }

    public async Task<long> CountAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(DatabaseConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Waits until the query's count reaches <paramref name="expected"/>; fails with the worker's log otherwise.</summary>
    public async Task WaitForCountAsync(string sql, long expected, TimeSpan timeout, string what)
    {
        try
        {
            await ProcessRunner.WaitUntilAsync(async () => await CountAsync(sql) >= expected, timeout, what);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message} (count is {await CountAsync(sql)})\n--- worker log ---\n{WorkerLog()}", e);
        }
    }

    /// <summary>Waits until no job is queued, running or waiting to be retried, so "nothing more happened" can be asserted.</summary>
    public async Task WaitForIdleAsync(TimeSpan timeout)
    {
        // Jobs scheduled for later count too (a stability re-check a few seconds out, a failed attempt's retry): what they
        // will do is part of what the test then asserts.
        const string Busy = "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed')";
        try
        {
            await ProcessRunner.WaitUntilAsync(async () => await CountAsync(Busy) == 0, timeout, "the job queue to drain");
        }
        catch (TimeoutException e)
        {
            await using var connection = new NpgsqlConnection(DatabaseConnectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(
                "SELECT string_agg(kind || ' ' || idempotency_key || ' ' || state || ' ' || attempts || ' ' || coalesce(last_error, ''), E'\\n') FROM jobs WHERE state <> 'succeeded'", connection);
            throw new TimeoutException($"{e.Message}; unfinished jobs:\n{await command.ExecuteScalarAsync()}\n--- worker log ---\n{WorkerLog()}", e);
        }
    }

    public string WorkerLog()
    {
        var text = _stoppedOutput + "\n" + (_worker?.Output ?? "") + string.Concat(_replicas.Select(r => "\n--- replica ---\n" + r.Output));
        return text.Length > 8000 ? text[^8000..] : text;
    }

    public async ValueTask DisposeAsync()
    {
        _channel?.Dispose();
        Orthanc?.Dispose();
        await StopWorkerAsync();
        foreach (var replica in _replicas)
        {
            await replica.DisposeAsync();
        }
        await _orthanc.DisposeAsync();
        if (_workerDatabaseServer is not null)
        {
            await _workerDatabaseServer.DisposeAsync();
        }
        File.Delete(AdminTokenFile);
    }
}
