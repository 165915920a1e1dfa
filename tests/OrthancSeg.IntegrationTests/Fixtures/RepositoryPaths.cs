namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>
/// Where the checkout's own files are: the fixtures start what the stack starts, from the same
/// templates and scripts, so a test that passes says something about `make up`.
/// </summary>
internal static class RepositoryPaths
{
    private static readonly Lazy<string> s_root = new(FindRoot);

    public static string Root => s_root.Value;

    public static string OrthancConfig => Path.Combine(Root, "orthanc-config");

    public static string BridgeScript => Path.Combine(Root, "plugin-bridge", "orthancseg_bridge.py");

    /// <summary>
    /// The prebuilt OHIF viewer that orthanc-config/install-ohif.sh unpacks (run by `make test`). When the checkout is private
    /// (under /root), .stack/ohif links to a folder under /var/lib/orthancseg that nginx's workers (user nobody) can reach:
    /// the link's target is given, so nginx never walks through the private folder.
    /// </summary>
    public static string OhifDist
    {
        get
        {
            var ohif = new DirectoryInfo(Path.Combine(Environment.GetEnvironmentVariable("ORTHANCSEG_STACK_DIR") ?? Path.Combine(Root, ".stack"), "ohif"));
            var target = ohif.LinkTarget is null ? ohif.FullName : ohif.ResolveLinkTarget(returnFinalTarget: true)!.FullName;
            return Path.Combine(target, "dist");
        }
    }

    public static string EndToEnd => Path.Combine(Root, "tests", "e2e");

    /// <summary>The independent gRPC client (Node's @grpc/grpc-js with reflection), installed by `npm ci` there (make test does).</summary>
    public static string GrpcClient => Path.Combine(Root, "tests", "grpc-client");

    /// <summary>Screenshots and logs a person looks at after a run.</summary>
    public static string Artifacts
    {
        get
        {
            var directory = Path.Combine(Root, "artifacts", "integration");
            Directory.CreateDirectory(directory);
            return directory;
        }
    }

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "OrthancSeg.sln")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException($"No OrthancSeg.sln above {AppContext.BaseDirectory}: the tests must run from the checkout");
    }
}
