namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>
/// One side of two machines as an operator makes it: `make up ROLE=pacs|segmentation LISTEN=... PEER=...` run by the
/// Makefile inside a network namespace of <see cref="LinkedHosts"/>, on the stack's default ports (each namespace has
/// its own loopback), with a state folder of its own inside a private folder (<see cref="SupervisedStack.CreatePrivate"/>).
/// Stopped by `make down` on dispose; its folders are removed. Needs root.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class StackSide : IAsyncDisposable
{
    private readonly Dictionary<string, string> _environment;

    /// <param name="environment">More ORTHANCSEG_* settings for make (ports, the operator's certificates).</param>
    public StackSide(string ns, string role, string listen, string peer, IReadOnlyDictionary<string, string>? environment = null)
    {
        Namespace = ns;
        Role = role;
        Listen = listen;
        Peer = peer;
        SupervisedStack.CreatePrivate(PrivateFolder);
        _environment = new Dictionary<string, string>
        {
            ["ORTHANCSEG_STACK_DIR"] = StackDirectory,
            // Both sides are one checkout: copy the Release build the tests run from, never rebuild it in place.
            ["ORTHANCSEG_NO_BUILD"] = "1",
            ["ORTHANCSEG_STABLE_AGE"] = "2",
        };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            _environment[key] = value;
        }
    }

    public string Namespace { get; }

    public string Role { get; }

    public string Listen { get; }

    public string Peer { get; }

    /// <summary>The private folder (mode 700) that holds the state folder; files handed to this side go there too.</summary>
    public string PrivateFolder { get; } = SupervisedStack.NewPrivateFolder();

    public string StackDirectory => Path.Combine(PrivateFolder, "stack");

    /// <summary>The state folder's real path (make up keeps it under /var/lib/orthancseg: the private folder is closed to the services).</summary>
    public string StateFolder => SupervisedStack.RealPath(StackDirectory);

    public string Secret(string name) => File.ReadAllText(Path.Combine(StackDirectory, "secrets", name)).Trim();

    /// <summary>
    /// Gives this side the OHIF viewer's tarball that `make test` fetched into the checkout's .stack/cache, as an operator
    /// copies it to a PACS server without internet access (docs/operations.md): a namespace reaches no registry.
    /// </summary>
    public void CopyViewerTarball()
    {
        var cache = new DirectoryInfo(Path.Combine(RepositoryPaths.Root, ".stack", "cache"));
        foreach (var tarball in cache.Exists ? cache.GetFiles("ohif-app-*.tgz") : [])
        {
            tarball.CopyTo(Path.Combine(Directory.CreateDirectory(Path.Combine(StackDirectory, "cache")).FullName, tarball.Name));
        }
    }

    /// <summary>make up ROLE=... LISTEN=... PEER=... [LINK=bundle] in this side's namespace; throws with make's output when it fails.</summary>
    /// <param name="environment">Settings for this make up only (the operator's certificates).</param>
    public Task<string> UpAsync(string? bundle = null, IReadOnlyDictionary<string, string>? environment = null) =>
        MakeAsync(["up", $"ROLE={Role}", $"LISTEN={Listen}", $"PEER={Peer}", .. bundle is null ? Array.Empty<string>() : [$"LINK={bundle}"]],
            TimeSpan.FromMinutes(8), environment);

    /// <summary>Runs make with these arguments in this side's namespace, from the checkout; throws with its output when it fails.</summary>
    public Task<string> MakeAsync(IEnumerable<string> arguments, TimeSpan timeout, IReadOnlyDictionary<string, string>? environment = null)
    {
        var (program, ipArguments) = LinkedHosts.Command(Namespace, "make", ["--no-print-directory", .. arguments]);
        var all = new Dictionary<string, string>(_environment);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            all[key] = value;
        }
        return ProcessRunner.RunAsync(program, ipArguments, timeout, all, RepositoryPaths.Root);
    }

    /// <summary>make status: its exit code (0 when every part and the link are healthy) and what it printed.</summary>
    public async Task<(bool Healthy, string Output)> StatusAsync()
    {
        try
        {
            return (true, await MakeAsync(["status"], TimeSpan.FromMinutes(1)));
        }
        catch (InvalidOperationException e)
        {
            return (false, e.Message);
        }
    }

    /// <summary>Runs a program in this side's namespace (the CLI, curl, openssl) and returns its output.</summary>
    public Task<string> RunAsync(string program, IEnumerable<string> arguments, TimeSpan? timeout = null) =>
        LinkedHosts.RunInAsync(Namespace, program, arguments, timeout ?? TimeSpan.FromSeconds(90));

    /// <summary>The CLI make up installed in the state folder, run in this side's namespace as its operator would.</summary>
    public Task<string> CliAsync(params string[] arguments) => RunAsync(Path.Combine(StackDirectory, "bin", "orthancseg"), arguments);

    /// <summary>The processes whose command line names the state folder (supervisord, PostgreSQL, Orthanc, nginx, the worker).</summary>
    public async Task<IReadOnlyList<string>> ProcessesAsync()
    {
        try
        {
            var output = await ProcessRunner.RunAsync("pgrep", ["-af", StateFolder], TimeSpan.FromSeconds(10));
            return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        catch (InvalidOperationException e) when (e.Message.Contains("exited with 1", StringComparison.Ordinal))
        {
            return [];
        }
    }

    public async ValueTask DisposeAsync() =>
        await SupervisedStack.RemoveAfterAsync(PrivateFolder, StackDirectory, () => MakeAsync(["down"], TimeSpan.FromMinutes(3)));
}
