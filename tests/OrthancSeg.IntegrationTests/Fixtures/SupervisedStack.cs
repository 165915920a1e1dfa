using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Npgsql;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Records;

namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>
/// The real stack, started by `make up` itself (orthanc-config/stack.sh up) under its supervisord, on free ports, with its
/// state folder inside a folder only its owner can enter (mode 700, like a clone under /root), which the services, running
/// as other users, cannot enter: make up keeps the state under /var/lib/orthancseg and links it. Stopped by `make down`;
/// the folders it placed outside are removed.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SupervisedStack : IAsyncLifetime
{
    private readonly int[] _ports = ProcessRunner.FreePorts(6);
    private GrpcChannel? _channel;

    /// <summary>The private folder (mode 700) that holds the state folder.</summary>
    public string PrivateFolder { get; } = NewPrivateFolder();

    public string StackDirectory => Path.Combine(PrivateFolder, "stack");

    public int PgPort => _ports[0];

    public int HttpPort => _ports[1];

    public int DicomPort => _ports[2];

    public int OhifPort => _ports[3];

    public int WorkerPort => _ports[4];

    public int AdminerPort => _ports[5];

    /// <summary>The state folder's real path (StackDirectory may be a link to it).</summary>
    public string StateFolder => RealPath(StackDirectory);

    public Uri ViewerUrl => new($"http://127.0.0.1:{OhifPort}/");

    public CaseService.CaseServiceClient Cases { get; private set; } = null!;

    public SnapshotService.SnapshotServiceClient Snapshots { get; private set; } = null!;

    public string RestartsLog => Path.Combine(StackDirectory, "logs", "restarts.log");

    public async Task InitializeAsync()
    {
        CreatePrivate(PrivateFolder);
        await StackAsync("up", TimeSpan.FromMinutes(8));
        _channel = GrpcChannel.ForAddress($"http://127.0.0.1:{WorkerPort}");
        var token = (await File.ReadAllTextAsync(Path.Combine(StackDirectory, "secrets", "admin-token"))).Trim();
        var admin = RecordsHarness.WithToken(_channel, token);
        Cases = new CaseService.CaseServiceClient(admin);
        Snapshots = new SnapshotService.SnapshotServiceClient(admin);
    }

    public async Task DisposeAsync()
    {
        _channel?.Dispose();
        await RemoveAfterAsync(PrivateFolder, StackDirectory, () => StackAsync("down", TimeSpan.FromMinutes(3)));
    }

    /// <summary>A new path for a private folder (<see cref="CreatePrivate"/>) in the temporary folder.</summary>
    internal static string NewPrivateFolder() => Path.Combine(Path.GetTempPath(), "orthancseg-private-" + Guid.NewGuid().ToString("N")[..12]);

    /// <summary>Creates a folder only its owner can enter (mode 700), like a clone under /root.</summary>
    internal static void CreatePrivate(string folder)
    {
        Directory.CreateDirectory(folder);
        File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>A state folder's real path (make up may have made it a link to /var/lib/orthancseg).</summary>
    internal static string RealPath(string stackDirectory) =>
        new DirectoryInfo(stackDirectory).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? stackDirectory;

    /// <summary>
    /// Stops a stack (<paramref name="down"/>: make down), then removes the private folder that holds its state folder and
    /// what make up placed outside it (as root: the state folder, the viewer; an older make up also PostgreSQL's data and
    /// nginx's temporary files), even when make down failed.
    /// </summary>
    internal static async Task RemoveAfterAsync(string privateFolder, string stackDirectory, Func<Task> down)
    {
        var stateFolder = RealPath(stackDirectory);
        var outside = new[] { "pg", "ohif", Path.Combine("nginx", "tmp") }
            .Select(p => new DirectoryInfo(Path.Combine(stateFolder, p)))
            .Where(d => d.LinkTarget is not null)
            .Select(d => d.ResolveLinkTarget(returnFinalTarget: true)!.FullName)
            .Append(stateFolder)
            .Where(d => d != stackDirectory)
            .ToList();
        try
        {
            await down();
        }
        finally
        {
            foreach (var directory in outside.Where(Directory.Exists))
            {
                Directory.Delete(directory, recursive: true);
            }
            if (Directory.Exists(privateFolder))
            {
                Directory.Delete(privateFolder, recursive: true);
            }
        }
    }

    /// <summary>Runs stack.sh (make up, make down, make status) for this stack; throws with its output when it fails.</summary>
    public Task<string> StackAsync(string command, TimeSpan timeout) =>
        ProcessRunner.RunAsync(Path.Combine(RepositoryPaths.OrthancConfig, "stack.sh"), [command], timeout, Environment(), RepositoryPaths.Root);

    /// <summary>What `make status` prints, whether or not every part is healthy (it exits 1 then).</summary>
    public async Task<string> StatusAsync()
    {
        try
        {
            return await StackAsync("status", TimeSpan.FromMinutes(1));
        }
        catch (InvalidOperationException e)
        {
            return e.Message;
        }
    }

    /// <summary>The restart count `make status` shows for a part (its name as printed: Orthanc, Worker, ...).</summary>
    public static int RestartsIn(string status, string part)
    {
        var match = Regex.Match(status, $@"^\s*{part}\s+.*?\brestarts (\d+)", RegexOptions.Multiline);
        Assert.True(match.Success, $"make status shows no restart count for {part}:\n{status}");
        return int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    /// <summary>The pid supervisord knows for a program (postgres, orthanc, worker, nginx); 0 when it is not running.</summary>
    public async Task<int> PidAsync(string program)
    {
        var output = await ProcessRunner.RunAsync("supervisorctl",
            ["-c", Path.Combine(StackDirectory, "supervisor", "supervisord.conf"), "pid", program], TimeSpan.FromSeconds(30));
        return int.Parse(output.Trim(), CultureInfo.InvariantCulture);
    }

    /// <summary>SIGKILL to a supervised program's process, as the OOM killer would end it. Returns the pid it had.</summary>
    public async Task<int> KillAsync(string program)
    {
        var pid = await PidAsync(program);
        Assert.True(pid > 0, $"{program} is not running");
        await KillAsync(pid);
        return pid;
    }

    /// <summary>SIGKILL to a process whose pid is already known, without asking supervisord first (which takes a moment).</summary>
    public static Task KillAsync(int pid) =>
        ProcessRunner.RunAsync("kill", ["-KILL", pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10));

    /// <summary>Stores DICOM files in the stack's Orthanc through its REST API, as an uploader would.</summary>
    public async Task UploadAsync(IEnumerable<DicomFile> files)
    {
        using var orthanc = CreateOrthancClient();
        foreach (var file in files)
        {
            using var content = new ByteArrayContent(DicomWriter.ToBytes(file));
            content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
            using var response = await orthanc.PostAsync(new Uri("instances", UriKind.Relative), content);
            Assert.True(response.IsSuccessStatusCode, $"Orthanc refused an upload: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
    }

    public HttpClient CreateOrthancClient()
    {
        var password = File.ReadAllText(Path.Combine(StackDirectory, "secrets", "orthanc-password")).Trim();
        var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{HttpPort}/"), Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"orthancseg:{password}")));
        return client;
    }

    public async Task<bool> OrthancAnswersAsync()
    {
        using var client = CreateOrthancClient();
        client.Timeout = TimeSpan.FromSeconds(2);
        try
        {
            using var response = await client.GetAsync(new Uri("system", UriKind.Relative));
            return response.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    public async Task<bool> WorkerServingAsync()
    {
        try
        {
            var answer = await new Health.HealthClient(_channel).CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(2));
            return answer.Status == HealthCheckResponse.Types.ServingStatus.Serving;
        }
        catch (RpcException)
        {
            return false;
        }
    }

    /// <summary>Runs the CLI that make up installed in the stack (.stack/bin/orthancseg), as a user would.</summary>
    public Task<string> CliAsync(params string[] arguments) =>
        ProcessRunner.RunAsync(Path.Combine(StackDirectory, "bin", "orthancseg"), arguments, TimeSpan.FromSeconds(90));

    /// <summary>A count from the worker's database, with the worker's own role and generated password.</summary>
    public async Task<long> CountAsync(string sql)
    {
        var password = (await File.ReadAllTextAsync(Path.Combine(StackDirectory, "secrets", "pg-worker-password"))).Trim();
        await using var connection = new NpgsqlConnection($"Host=127.0.0.1;Port={PgPort};Database=orthancseg;Username=orthancseg_worker;Password={password};Pooling=false");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    private Dictionary<string, string> Environment() => new()
    {
        ["ORTHANCSEG_STACK_DIR"] = StackDirectory,
        ["ORTHANCSEG_PG_PORT"] = PgPort.ToString(CultureInfo.InvariantCulture),
        ["ORTHANCSEG_ORTHANC_HTTP_PORT"] = HttpPort.ToString(CultureInfo.InvariantCulture),
        ["ORTHANCSEG_ORTHANC_DICOM_PORT"] = DicomPort.ToString(CultureInfo.InvariantCulture),
        ["ORTHANCSEG_OHIF_PORT"] = OhifPort.ToString(CultureInfo.InvariantCulture),
        ["ORTHANCSEG_WORKER_PORT"] = WorkerPort.ToString(CultureInfo.InvariantCulture),
        ["ORTHANCSEG_ADMINER_PORT"] = AdminerPort.ToString(CultureInfo.InvariantCulture),
        ["ORTHANCSEG_STABLE_AGE"] = "2",
        // Copy the Release build the tests run from; rebuilding in place would pull it from under other tests' workers.
        ["ORTHANCSEG_NO_BUILD"] = "1",
        // The worker reads the rest of its configuration from the environment supervisord passes on. After an Orthanc
        // crash a series that was not stable yet is never announced as stable: the worker's own check finds it, sooner
        // here than the default 90 s. One series at a time, one request at a time: an export slow enough to be killed.
        ["OrthancSeg__Records__NewSeriesCheckDelay"] = "00:00:05",
        ["OrthancSeg__Records__CatchUpInterval"] = "00:00:02",
        ["OrthancSeg__Datasets__SeriesInFlight"] = "1",
        ["OrthancSeg__Datasets__RequestsPerSeries"] = "1",
        ["OrthancSeg__Jobs__RetryBaseDelay"] = "00:00:01",
        ["OrthancSeg__Jobs__RetryMaxDelay"] = "00:00:05",
    };
}

[CollectionDefinition(Name)]
public sealed class SupervisedStackCollection : ICollectionFixture<SupervisedStack>
{
    public const string Name = "Supervised stack";
}
