namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>
/// A throwaway nginx serving the installed OHIF viewer on a free port and proxying /dicom-web/ to an
/// <see cref="OrthancServer"/>, from the same template and renderer the stack uses.
/// </summary>
internal sealed class OhifServer : IAsyncDisposable
{
    private readonly string _directory;
    private readonly BackgroundProcess _process;

    private OhifServer(string directory, int port, BackgroundProcess process)
    {
        _directory = directory;
        Port = port;
        _process = process;
    }

    public int Port { get; }

    public Uri BaseUrl => new($"http://127.0.0.1:{Port}/");

    public static async Task<OhifServer> StartAsync(OrthancServer orthanc)
    {
        if (!File.Exists(Path.Combine(RepositoryPaths.OhifDist, "index.html")))
        {
            throw new InvalidOperationException($"OHIF is not installed in {RepositoryPaths.OhifDist}. Run orthanc-config/install-ohif.sh (make test does).");
        }
        var directory = Path.Combine(Path.GetTempPath(), "orthancseg-nginx-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        var port = ProcessRunner.FreePort();
        var config = Path.Combine(directory, "nginx.conf");
        await ProcessRunner.RunAsync(Path.Combine(RepositoryPaths.OrthancConfig, "render-nginx-config.sh"),
        [
            config,
            $"LISTEN=127.0.0.1:{port}",
            $"OHIF_ROOT={RepositoryPaths.OhifDist}",
            $"ORTHANC_URL=http://127.0.0.1:{orthanc.HttpPort}",
            $"ORTHANC_USER={OrthancServer.Username}",
            $"ORTHANC_PASSWORD_FILE={orthanc.PasswordFile}",
            $"PID_FILE={Path.Combine(directory, "nginx.pid")}",
            $"LOG_DIR={directory}",
            $"TEMP_DIR={Path.Combine(directory, "tmp")}",
        ], TimeSpan.FromSeconds(30));
        // In the foreground, so the fixture owns the master process and its workers.
        var process = BackgroundProcess.Start("nginx", ["-p", directory, "-c", config, "-e", Path.Combine(directory, "nginx-error.log"), "-g", "daemon off;"],
            Path.Combine(directory, "nginx.out.log"));
        var server = new OhifServer(directory, port, process);
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        await process.WaitUntilReadyAsync(async () =>
        {
            try
            {
                using var response = await client.GetAsync(new Uri(server.BaseUrl, "dicom-web/studies?limit=1"));
                return response.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), $"nginx (OHIF) on port {port}");
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}
