using System.Diagnostics;
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
/// One test's world for recording: a fresh Orthanc (its own storage, free ports, StableAge 2 s) and the built
/// worker (orthancseg-worker) with a fresh database in the shared throwaway PostgreSQL, both real processes.
/// The worker can be stopped and started again on the same database, as an operator would.
/// </summary>
internal sealed class RecordsHarness : IAsyncDisposable
{
    private readonly PostgresServer _postgres;
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "orthancseg-records-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly List<string> _logs = [];
    private Process? _orthanc;
    private WorkerProcess? _worker;
    private string _stoppedOutput = "";
    private GrpcChannel? _channel;

    private readonly IReadOnlyDictionary<string, string> _workerSettings;

    private RecordsHarness(PostgresServer postgres, IReadOnlyDictionary<string, string>? workerSettings)
    {
        _postgres = postgres;
        _workerSettings = workerSettings ?? new Dictionary<string, string>();
    }

    public int OrthancPort { get; } = ProcessRunner.FreePort();

    public string DatabaseConnectionString { get; private set; } = "";

    public string AdminTokenFile => Path.Combine(_directory, "admin-token");

    public string BridgeTokenFile => Path.Combine(_directory, "bridge-token");

    public HttpClient Orthanc { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

    public Admin.AdminClient Admin { get; private set; } = null!;

    public Events.EventsClient Events { get; private set; } = null!;

    /// <summary>Starts Orthanc and the worker; <paramref name="workerSettings"/> adds to or overrides the worker's configuration.</summary>
    public static async Task<RecordsHarness> StartAsync(PostgresServer postgres, IReadOnlyDictionary<string, string>? workerSettings = null)
    {
        var harness = new RecordsHarness(postgres, workerSettings);
        await harness.InitializeAsync();
        return harness;
    }

    private async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        await WorkerProcess.WriteSecretAsync(AdminTokenFile, Guid.NewGuid().ToString("N"));
        await WorkerProcess.WriteSecretAsync(BridgeTokenFile, Guid.NewGuid().ToString("N"));
        DatabaseConnectionString = await _postgres.CreateDatabaseAsync("records");
        Directory.CreateDirectory(Path.Combine(_directory, "orthanc"));
        var config = Path.Combine(_directory, "orthanc.json");
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["Name"] = "records-test",
            ["StorageDirectory"] = Path.Combine(_directory, "orthanc"),
            ["IndexDirectory"] = Path.Combine(_directory, "orthanc"),
            ["HttpPort"] = OrthancPort,
            ["DicomPort"] = ProcessRunner.FreePort(),
            ["RemoteAccessAllowed"] = false,
            ["AuthenticationEnabled"] = false,
            ["StableAge"] = 2,
            ["Plugins"] = Array.Empty<string>(),
        }));
        _orthanc = Start("/usr/sbin/Orthanc", [config], "orthanc.log", []);
        Orthanc.BaseAddress = new Uri($"http://127.0.0.1:{OrthancPort}/");
        await ProcessRunner.WaitUntilAsync(async () =>
        {
            try
            {
                using var response = await Orthanc.GetAsync(new Uri("system", UriKind.Relative));
                return response.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), $"Orthanc on port {OrthancPort}");
        await StartWorkerAsync();
    }

    public static CallInvoker WithToken(GrpcChannel channel, string token) =>
        channel.Intercept(metadata =>
        {
            metadata.Add("authorization", $"Bearer {token}");
            return metadata;
        });

    public GrpcChannel Channel => _channel!;

    /// <summary>The running worker's gRPC address, for the CLI's --url.</summary>
    public string WorkerAddress => _worker?.Address ?? throw new InvalidOperationException("The worker is not running");

    public async Task StartWorkerAsync()
    {
        if (_worker is not null)
        {
            throw new InvalidOperationException("The worker is already running");
        }
        // The host's fixture, pointed at this test's database and token files, so a restarted worker is the same worker.
        var settings = new Dictionary<string, string>
        {
            ["OrthancSeg:Database:ConnectionString"] = DatabaseConnectionString,
            ["OrthancSeg:Orthanc:Url"] = $"http://127.0.0.1:{OrthancPort}",
            ["OrthancSeg:Auth:BridgeTokenFile"] = BridgeTokenFile,
            ["OrthancSeg:Auth:AdminTokenFile"] = AdminTokenFile,
            ["OrthancSeg:Records:CatchUpInterval"] = "00:00:01",
            ["OrthancSeg:Records:PollInterval"] = "00:00:00.200",
            ["OrthancSeg:Jobs:RetryBaseDelay"] = "00:00:01",
            ["OrthancSeg:Jobs:RetryMaxDelay"] = "00:00:05",
            ["Serilog:MinimumLevel:Default"] = "Information",
        };
        foreach (var (key, value) in _workerSettings)
        {
            settings[key] = value;
        }
        _worker = await WorkerProcess.StartAsync(_postgres, settings);
        _channel?.Dispose();
        _channel = _worker.CreateChannel();
        Admin = new Admin.AdminClient(WithToken(_channel, (await File.ReadAllTextAsync(AdminTokenFile)).Trim()));
        Events = new Events.EventsClient(WithToken(_channel, (await File.ReadAllTextAsync(BridgeTokenFile)).Trim()));
    }

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

    public async Task<string> UploadAsync(DicomFile file)
    {
        using var content = new ByteArrayContent(DicomWriter.ToBytes(file));
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

    /// <summary>Waits until no recording job is due or running, so "nothing more happened" can be asserted.</summary>
    public Task WaitForIdleAsync(TimeSpan timeout) =>
        WaitForCountAsync("SELECT CASE WHEN count(*) = 0 THEN 1 ELSE 0 END FROM jobs WHERE state IN ('queued', 'running', 'failed') AND not_before <= now()",
            1, timeout, "the job queue to drain");

    public string WorkerLog()
    {
        var text = _stoppedOutput + "\n" + (_worker?.Output ?? "");
        return text.Length > 8000 ? text[^8000..] : text;
    }

    private Process Start(string fileName, IEnumerable<string> arguments, string logName, Dictionary<string, string> environment)
    {
        var logPath = Path.Combine(_directory, logName);
        _logs.Add(logPath);
        var info = new ProcessStartInfo(fileName) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _directory };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }
        var log = new StreamWriter(logPath, append: true) { AutoFlush = true };
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => Write(log, e.Data);
        process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void Write(StreamWriter log, string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (log)
        {
            log.WriteLine(line);
        }
    }

    private static async Task StopAsync(Process process)
    {
        if (!process.HasExited)
        {
            // SIGTERM first: the worker shuts down as it would under systemd.
            await ProcessRunner.RunAsync("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(5));
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
        }
        process.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        _channel?.Dispose();
        Orthanc.Dispose();
        await StopWorkerAsync();
        if (_orthanc is not null)
        {
            await StopAsync(_orthanc);
        }
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // Orthanc may still be flushing; the temp directory is cleaned by the OS later.
        }
    }
}
