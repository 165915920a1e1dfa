namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>
/// The PACS server's side of the link as make up ROLE=pacs sets it up, in a namespace of <see cref="LinkedHosts"/>: the
/// link's certificates from orthanc-config/link-certs.sh (one CA, nginx's certificate for the PACS address, the worker's
/// for the segmentation address), the worker's Orthanc password, and nginx's TLS front for Orthanc rendered by
/// orthanc-config/render-link-proxy.sh on <see cref="LinkedHosts.PacsAddress"/>:<see cref="Port"/>.
/// </summary>
public sealed class LinkProxy : IAsyncDisposable
{
    public const string LinkUser = "orthancseg-worker";
    public const int Port = 8443;

    private readonly string _directory;
    private BackgroundProcess? _nginx;

    private LinkProxy(string directory)
    {
        _directory = directory;
    }

    public string Pki => Path.Combine(_directory, "pki");

    public string CaFile => Path.Combine(Pki, "link-ca.pem");

    public string LinkPasswordFile => Path.Combine(_directory, "link-password");

    /// <summary>curl's credentials of the worker's account for the PACS address (never on a command line).</summary>
    public string NetrcFile => Path.Combine(_directory, "link.netrc");

    public static string Url => $"https://{LinkedHosts.PacsAddress}:{Port}";

    /// <summary>The render-orthanc-config.sh keys of the PACS side: the worker's account, the bridge calling the worker over TLS.</summary>
    public IReadOnlyList<string> OrthancConfiguration =>
    [
        $"LINK_USER={LinkUser}", $"LINK_PASSWORD_FILE={LinkPasswordFile}", $"WORKER_HOST={LinkedHosts.SegmentationAddress}", $"WORKER_CA_FILE={CaFile}",
    ];

    /// <summary>Makes the certificates and the password in <paramref name="directory"/>; <see cref="StartAsync"/> starts nginx.</summary>
    public static async Task<LinkProxy> CreateAsync(string directory)
    {
        var proxy = new LinkProxy(directory);
        Directory.CreateDirectory(directory);
        var certs = Path.Combine(RepositoryPaths.OrthancConfig, "link-certs.sh");
        await ProcessRunner.RunAsync(certs, ["ca", proxy.Pki], TimeSpan.FromSeconds(30));
        await ProcessRunner.RunAsync(certs, ["cert", proxy.Pki, "pacs-link", LinkedHosts.PacsAddress], TimeSpan.FromSeconds(30));
        await ProcessRunner.RunAsync(certs, ["cert", proxy.Pki, "worker-link", LinkedHosts.SegmentationAddress], TimeSpan.FromSeconds(30));
        var password = Guid.NewGuid().ToString("N");
        await WorkerProcess.WriteSecretAsync(proxy.LinkPasswordFile, password);
        await WorkerProcess.WriteSecretAsync(proxy.NetrcFile, $"machine {LinkedHosts.PacsAddress} login {LinkUser} password {password}");
        return proxy;
    }

    /// <summary>The worker settings make up ROLE=segmentation gives: Orthanc across the link, the bridge's calls on the link address.</summary>
    public Dictionary<string, string> WorkerSettings(int workerLinkPort) => new()
    {
        ["OrthancSeg:Orthanc:Url"] = Url,
        ["OrthancSeg:Orthanc:Username"] = LinkUser,
        ["OrthancSeg:Orthanc:PasswordFile"] = LinkPasswordFile,
        ["OrthancSeg:Orthanc:CaFile"] = CaFile,
        ["Kestrel:Endpoints:Link:Url"] = $"https://{LinkedHosts.SegmentationAddress}:{workerLinkPort}",
        ["Kestrel:Endpoints:Link:Protocols"] = "Http2",
        ["Kestrel:Endpoints:Link:Certificate:Path"] = Path.Combine(Pki, "worker-link.pem"),
        ["Kestrel:Endpoints:Link:Certificate:KeyPath"] = Path.Combine(Pki, "worker-link.key"),
    };

    /// <summary>Starts nginx's TLS front in <paramref name="hosts"/>' PACS namespace, to Orthanc's loopback port; ready when the worker's account gets /system across the link.</summary>
    public async Task StartAsync(LinkedHosts hosts, int orthancPort)
    {
        var dir = Path.Combine(_directory, "nginx");
        Directory.CreateDirectory(dir);
        var site = Path.Combine(dir, "link-site.conf");
        await ProcessRunner.RunAsync(Path.Combine(RepositoryPaths.OrthancConfig, "render-link-proxy.sh"),
        [
            site, $"LISTEN={LinkedHosts.PacsAddress}:{Port}", $"CERT={Path.Combine(Pki, "pacs-link.pem")}", $"KEY={Path.Combine(Pki, "pacs-link.key")}",
            $"ORTHANC_URL=http://127.0.0.1:{orthancPort}", $"LINK_USER={LinkUser}", $"LOG_DIR={dir}",
        ], TimeSpan.FromSeconds(30));
        var conf = Path.Combine(dir, "nginx.conf");
        await File.WriteAllTextAsync(conf, $$"""
            pid {{dir}}/nginx.pid;
            error_log {{dir}}/error.log warn;
            events { }
            http {
                client_body_temp_path {{dir}}/body;
                proxy_temp_path {{dir}}/proxy;
                include {{site}};
            }
            """);
        var (program, arguments) = LinkedHosts.Command(hosts.Pacs, "/usr/sbin/nginx", ["-p", dir, "-c", conf, "-g", "daemon off; user root;"]);
        _nginx = BackgroundProcess.Start(program, arguments, Path.Combine(dir, "nginx.log"));
        await _nginx.WaitUntilReadyAsync(async () =>
        {
            try
            {
                return (await LinkedHosts.RunInAsync(hosts.Segmentation, "curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                    "--cacert", CaFile, "--netrc-file", NetrcFile, $"{Url}/system"], TimeSpan.FromSeconds(20))).Trim() == "200";
            }
            catch (InvalidOperationException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), "nginx's TLS front for Orthanc on the link");
    }

    public async ValueTask DisposeAsync()
    {
        if (_nginx is not null)
        {
            await _nginx.DisposeAsync();
        }
    }
}
