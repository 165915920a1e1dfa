using Grpc.Health.V1;
using Grpc.Net.Client;

namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>
/// The built worker (orthancseg-worker) started as `make up` starts it: configured through the
/// environment only, with its own database in the Orthanc fixture's PostgreSQL and that Orthanc as its PACS.
/// </summary>
internal sealed class WorkerProcess : IAsyncDisposable
{
    private readonly string _directory;
    private readonly BackgroundProcess _process;

    private WorkerProcess(string directory, int port, BackgroundProcess process)
    {
        _directory = directory;
        Port = port;
        _process = process;
    }

    public int Port { get; }

    public Uri Address => new($"http://127.0.0.1:{Port}");

    public string LogTail() => _process.LogTail();

    public static async Task<WorkerProcess> StartAsync(OrthancServer orthanc)
    {
        var directory = Path.Combine(Path.GetTempPath(), "orthancseg-worker-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        var adminToken = Path.Combine(directory, "admin-token");
        var bridgeToken = Path.Combine(directory, "bridge-token");
        await File.WriteAllTextAsync(adminToken, Guid.NewGuid().ToString("N"));
        await File.WriteAllTextAsync(bridgeToken, Guid.NewGuid().ToString("N"));
        var port = ProcessRunner.FreePort();
        var environment = new Dictionary<string, string>
        {
            ["DOTNET_ENVIRONMENT"] = "Production",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["OrthancSeg__Database__ConnectionString"] = await orthanc.Postgres.CreateDatabaseAsync("worker"),
            ["OrthancSeg__Orthanc__Url"] = $"http://127.0.0.1:{orthanc.HttpPort}",
            ["OrthancSeg__Orthanc__Username"] = OrthancServer.Username,
            ["OrthancSeg__Orthanc__PasswordFile"] = orthanc.PasswordFile,
            ["OrthancSeg__Auth__BridgeTokenFile"] = bridgeToken,
            ["OrthancSeg__Auth__AdminTokenFile"] = adminToken,
            ["Kestrel__Endpoints__Grpc__Url"] = $"http://127.0.0.1:{port}",
            ["Kestrel__Endpoints__Grpc__Protocols"] = "Http2",
        };
        var process = BackgroundProcess.Start("dotnet", [RepositoryPaths.WorkerAssembly], Path.Combine(directory, "worker.log"), environment, directory);
        var worker = new WorkerProcess(directory, port, process);
        await process.WaitUntilReadyAsync(async () => await worker.CheckHealthAsync() == HealthCheckResponse.Types.ServingStatus.Serving,
            TimeSpan.FromSeconds(90), $"the worker's gRPC health check on port {port}");
        return worker;
    }

    /// <summary>The standard gRPC health check for the whole server, or Unknown when it does not answer.</summary>
    public async Task<HealthCheckResponse.Types.ServingStatus> CheckHealthAsync()
    {
        using var channel = GrpcChannel.ForAddress(Address);
        try
        {
            var response = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(3));
            return response.Status;
        }
        catch (Grpc.Core.RpcException)
        {
            return HealthCheckResponse.Types.ServingStatus.Unknown;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync();
        File.Copy(_process.LogPath, Path.Combine(RepositoryPaths.Artifacts, $"worker-{Port}.log"), overwrite: true);
        Directory.Delete(_directory, recursive: true);
    }
}
