using System.Net.Sockets;

namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>
/// Two machines on one: two network namespaces made by the test (the PACS server and the segmentation server), joined
/// by a veth pair with addresses of their own (<see cref="PacsAddress"/>, <see cref="SegmentationAddress"/>) and
/// nothing else. Processes are started inside with <c>ip netns exec</c> (<see cref="Command"/>); the test itself,
/// outside, reaches a namespace's loopback-only servers through unix sockets (<see cref="ForwardAsync"/>). Needs root.
/// Removed on dispose (deleting a namespace deletes its end of the veth, and so the pair).
/// </summary>
public sealed class LinkedHosts : IAsyncDisposable
{
    public const string PacsAddress = "10.231.0.1";
    public const string SegmentationAddress = "10.231.0.2";

    private readonly string _suffix = Guid.NewGuid().ToString("N")[..6];
    private readonly List<BackgroundProcess> _forwards = [];
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "orthancseg-hosts-" + Guid.NewGuid().ToString("N")[..12]);

    private LinkedHosts()
    {
    }

    public string Pacs => $"osg-pacs-{_suffix}";

    public string Segmentation => $"osg-seg-{_suffix}";

    private string PacsVeth => $"osgp{_suffix}";

    private string SegmentationVeth => $"osgs{_suffix}";

    public static async Task<LinkedHosts> CreateAsync()
    {
        var hosts = new LinkedHosts();
        try
        {
            Directory.CreateDirectory(hosts._directory);
            await Ip("netns", "add", hosts.Pacs);
            await Ip("netns", "add", hosts.Segmentation);
            await Ip("link", "add", hosts.PacsVeth, "type", "veth", "peer", "name", hosts.SegmentationVeth);
            foreach (var (ns, veth, address) in new[] { (hosts.Pacs, hosts.PacsVeth, PacsAddress), (hosts.Segmentation, hosts.SegmentationVeth, SegmentationAddress) })
            {
                await Ip("link", "set", veth, "netns", ns);
                await Ip("-n", ns, "addr", "add", $"{address}/24", "dev", veth);
                await Ip("-n", ns, "link", "set", veth, "up");
                await Ip("-n", ns, "link", "set", "lo", "up");
            }
        }
        catch
        {
            await hosts.DisposeAsync();
            throw;
        }
        return hosts;
    }

    /// <summary>The command line that runs <paramref name="program"/> inside namespace <paramref name="ns"/>.</summary>
    public static (string Program, string[] Arguments) Command(string ns, string program, IEnumerable<string> arguments) =>
        ("ip", ["netns", "exec", ns, program, .. arguments]);

    /// <summary>Brings the link down (both ends): the cable pulled. <see cref="RestoreAsync"/> plugs it back.</summary>
    public async Task CutAsync()
    {
        await Ip("-n", Pacs, "link", "set", PacsVeth, "down");
        await Ip("-n", Segmentation, "link", "set", SegmentationVeth, "down");
    }

    public async Task RestoreAsync()
    {
        await Ip("-n", Pacs, "link", "set", PacsVeth, "up");
        await Ip("-n", Segmentation, "link", "set", SegmentationVeth, "up");
    }

    /// <summary>
    /// Limits what the PACS side sends across the link to <paramref name="rate"/> (tc's notation, e.g. "8mbit"): a slower link, so that
    /// a transfer lasts long enough to be cut in the middle. It stays through <see cref="CutAsync"/> and <see cref="RestoreAsync"/>.
    /// A token bucket (tbf): this machine's kernel has no netem.
    /// </summary>
    public Task ThrottleAsync(string rate) => ProcessRunner.RunAsync("tc",
        ["-n", Pacs, "qdisc", "replace", "dev", PacsVeth, "root", "tbf", "rate", rate, "burst", "32kbit", "latency", "400ms"], TimeSpan.FromSeconds(20));

    /// <summary>
    /// A unix socket (in the test's temporary folder) that forwards to <paramref name="port"/> on the loopback of
    /// namespace <paramref name="ns"/>, for the test's own HTTP and gRPC clients (<see cref="Handler"/>).
    /// </summary>
    public async Task<string> ForwardAsync(string ns, int port)
    {
        var socket = Path.Combine(_directory, $"{ns}-{port}.sock");
        var (program, arguments) = Command(ns, "/usr/bin/python3",
            [Path.Combine(RepositoryPaths.Root, "tests", "OrthancSeg.IntegrationTests", "Fixtures", "unix_to_tcp.py"), socket, "127.0.0.1", port.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        var forward = BackgroundProcess.Start(program, arguments, Path.Combine(_directory, $"forward-{ns}-{port}.log"));
        _forwards.Add(forward);
        await forward.WaitUntilReadyAsync(() => Task.FromResult(File.Exists(socket)), TimeSpan.FromSeconds(20), $"the forwarder of {ns}:{port}");
        return socket;
    }

    /// <summary>An HTTP handler whose every connection goes to the unix socket <paramref name="socketPath"/> (whatever the URL's host).</summary>
    public static SocketsHttpHandler Handler(string socketPath) => new()
    {
        ConnectCallback = async (_, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };

    /// <summary>Runs a command inside a namespace and returns its output (fails on a non-zero exit).</summary>
    public static Task<string> RunInAsync(string ns, string program, IEnumerable<string> arguments, TimeSpan timeout)
    {
        var (ip, ipArguments) = Command(ns, program, arguments);
        return ProcessRunner.RunAsync(ip, ipArguments, timeout);
    }

    private static Task<string> Ip(params string[] arguments) => ProcessRunner.RunAsync("ip", arguments, TimeSpan.FromSeconds(20));

    public async ValueTask DisposeAsync()
    {
        foreach (var forward in _forwards)
        {
            await forward.DisposeAsync();
        }
        foreach (var ns in new[] { Pacs, Segmentation })
        {
            try
            {
                await Ip("netns", "del", ns);
            }
            catch (InvalidOperationException)
            {
                // Never made (creation failed part way).
            }
        }
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }
}
