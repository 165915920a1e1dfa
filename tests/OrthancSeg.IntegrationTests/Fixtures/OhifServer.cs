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

    /// <summary>nginx's access log, as the stack keeps it in .stack/logs/nginx-access.log.</summary>
    public string AccessLogPath => Path.Combine(_directory, "nginx-access.log");

    /// <param name="appConfigAppendix">JavaScript run after the stack's app-config.js (e.g. to change the data
    /// source's configuration); null serves the installed viewer as the stack does.</param>
    public static async Task<OhifServer> StartAsync(OrthancServer orthanc, string? appConfigAppendix = null)
    {
        if (!File.Exists(Path.Combine(RepositoryPaths.OhifDist, "index.html")))
        {
            throw new InvalidOperationException($"OHIF is not installed in {RepositoryPaths.OhifDist}. Run orthanc-config/install-ohif.sh (make test does).");
        }
        var directory = Path.Combine(Path.GetTempPath(), "orthancseg-nginx-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        var root = appConfigAppendix is null ? RepositoryPaths.OhifDist : await OverlayAppConfigAsync(directory, appConfigAppendix);
        var port = ProcessRunner.FreePort();
        var config = Path.Combine(directory, "nginx.conf");
        await ProcessRunner.RunAsync(Path.Combine(RepositoryPaths.OrthancConfig, "render-nginx-config.sh"),
        [
            config,
            $"LISTEN=127.0.0.1:{port}",
            $"OHIF_ROOT={root}",
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

    /// <summary>
    /// A web root that is the installed viewer (symbolic links, nothing copied) with its own app-config.js: the
    /// stack's file followed by <paramref name="appendix"/>. The installed viewer is shared and never changed.
    /// </summary>
    private static async Task<string> OverlayAppConfigAsync(string directory, string appendix)
    {
        var root = Path.Combine(directory, "ohif");
        Directory.CreateDirectory(root);
        foreach (var entry in Directory.EnumerateFileSystemEntries(RepositoryPaths.OhifDist))
        {
            var name = Path.GetFileName(entry);
            if (name != "app-config.js")
            {
                File.CreateSymbolicLink(Path.Combine(root, name), entry);
            }
        }
        var config = Path.Combine(root, "app-config.js");
        var stack = await File.ReadAllTextAsync(Path.Combine(RepositoryPaths.OhifDist, "app-config.js"));
        await File.WriteAllTextAsync(config, $"{stack}\n// Added by the integration test fixture.\n{appendix}\n");
        // A script error in app-config.js shows as a black page in the browser: fail here, with the reason.
        await ProcessRunner.RunAsync("node", ["-e", "require('vm').runInNewContext(require('fs').readFileSync(process.argv[1], 'utf8'), { window: {} })", config], TimeSpan.FromSeconds(30));
        return root;
    }

    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}
