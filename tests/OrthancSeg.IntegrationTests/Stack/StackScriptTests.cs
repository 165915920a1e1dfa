using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Stack;

/// <summary>
/// `make up`, `make status`, `make down` themselves (orthanc-config/stack.sh), in a temporary state
/// directory on free ports, so they never meet a stack that runs in the checkout.
/// </summary>
public sealed class StackScriptTests : IDisposable
{
    private readonly string _stack = Path.Combine(Path.GetTempPath(), "orthancseg-stack-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly int[] _ports = ProcessRunner.FreePorts(6);

    private int PgPort => _ports[0];

    private int HttpPort => _ports[1];

    private int DicomPort => _ports[2];

    private int OhifPort => _ports[3];

    private int WorkerPort => _ports[4];

    private int AdminerPort => _ports[5];

    [Fact]
    public async Task Up_starts_every_part_twice_is_a_no_op_and_down_leaves_no_process()
    {
        try
        {
            var up = await StackAsync("up", TimeSpan.FromMinutes(6));
            Assert.Contains("OrthancSeg is up.", up, StringComparison.Ordinal);
            Assert.Contains($"http://127.0.0.1:{OhifPort}/", up, StringComparison.Ordinal);

            var status = await StackAsync("status", TimeSpan.FromMinutes(1));
            foreach (var part in new[] { "PostgreSQL", "Orthanc", "Worker", "Adminer", "OHIF" })
            {
                Assert.Matches($@"{part}\s+\S*running\S*\s", status);
            }

            var again = await StackAsync("up", TimeSpan.FromMinutes(2));
            Assert.Equal(4, again.Split("already").Length - 1);

            // An instance uploaded with Orthanc's generated password shows through the viewer's proxy, which adds
            // the credentials itself.
            using var series = await CtSeries.CreateAsync(slices: 1);
            using (var orthanc = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{HttpPort}/") })
            {
                var password = (await File.ReadAllTextAsync(Path.Combine(_stack, "secrets", "orthanc-password"))).Trim();
                orthanc.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"orthancseg:{password}")));
                using var content = new ByteArrayContent(await File.ReadAllBytesAsync(series.Files[0]));
                using var stored = await orthanc.PostAsync(new Uri("instances", UriKind.Relative), content);
                Assert.True(stored.IsSuccessStatusCode, await stored.Content.ReadAsStringAsync());
            }
            using (var viewer = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{OhifPort}/") })
            {
                var studies = await viewer.GetStringAsync(new Uri($"dicom-web/studies?StudyInstanceUID={series.StudyInstanceUid}", UriKind.Relative));
                Assert.Contains(series.StudyInstanceUid, studies, StringComparison.Ordinal);
            }

            await StackAsync("down", TimeSpan.FromMinutes(2));
            Assert.Empty(ProcessesMentioning(_stack));
            Assert.All(_ports, port => Assert.False(Listening(port), $"port {port} still listens after down"));
        }
        finally
        {
            await StackAsync("down", TimeSpan.FromMinutes(2), throwOnFailure: false);
        }
    }

    [Fact]
    public async Task No_command_line_shows_a_password_or_token_while_up_and_down_run()
    {
        // Whatever any local user sees in ps, sampled as fast as ps answers for the whole of make up and make down.
        var seen = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            var up = StackAsync("up", TimeSpan.FromMinutes(6));
            while (!up.IsCompleted)
            {
                seen.UnionWith(await CommandLinesAsync());
            }
            Assert.Contains("OrthancSeg is up.", await up, StringComparison.Ordinal);
            seen.UnionWith(await CommandLinesAsync());
            var down = StackAsync("down", TimeSpan.FromMinutes(2));
            while (!down.IsCompleted)
            {
                seen.UnionWith(await CommandLinesAsync());
            }
            await down;
        }
        finally
        {
            await StackAsync("down", TimeSpan.FromMinutes(2), throwOnFailure: false);
        }

        // The secrets make up generated, and PostgreSQL's and Orthanc's own view of them (a URL-encoded password, basic auth).
        var secrets = Directory.GetFiles(Path.Combine(_stack, "secrets"))
            .Where(f => !f.EndsWith(".pgpass", StringComparison.Ordinal) && !f.EndsWith(".netrc", StringComparison.Ordinal))
            .ToDictionary(f => new FileInfo(f).Name, f => File.ReadAllText(f).Trim());
        Assert.Equal(8, secrets.Count);
        Assert.True(seen.Count > 50, $"only {seen.Count} distinct command lines were sampled");
        Assert.Contains(seen, line => line.Contains("render-orthanc-config.sh", StringComparison.Ordinal)
            || line.Contains("Orthanc", StringComparison.Ordinal));
        foreach (var (name, value) in secrets)
        {
            var basic = Convert.ToBase64String(Encoding.UTF8.GetBytes($"orthancseg:{value}"));
            var shown = seen.Where(line => line.Contains(value, StringComparison.Ordinal) || line.Contains(basic, StringComparison.Ordinal)).ToList();
            Assert.True(shown.Count == 0, $"the secret {name} was on a command line:\n{string.Join('\n', shown)}");
        }
    }

    private static async Task<string[]> CommandLinesAsync() =>
        (await ProcessRunner.RunAsync("ps", ["-eo", "args"], TimeSpan.FromSeconds(30))).Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public async Task Up_names_a_port_that_is_already_taken_and_the_knob_that_moves_it()
    {
        using var squatter = new TcpListener(System.Net.IPAddress.Loopback, PgPort);
        squatter.Start();
        try
        {
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => StackAsync("up", TimeSpan.FromMinutes(2)));
            Assert.Contains($"port {PgPort}, needed by PostgreSQL, is already in use", error.Message, StringComparison.Ordinal);
            Assert.Contains("ORTHANCSEG_PG_PORT", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            squatter.Stop();
            await StackAsync("down", TimeSpan.FromMinutes(2), throwOnFailure: false);
        }
    }

    public void Dispose()
    {
        if (Directory.Exists(_stack))
        {
            // The viewer nginx serves is kept outside the state folder, which its user may not read.
            var viewer = new DirectoryInfo(Path.Combine(_stack, "ohif"));
            if (viewer.LinkTarget is not null && viewer.ResolveLinkTarget(returnFinalTarget: true) is { Exists: true } outside)
            {
                Directory.Delete(outside.FullName, recursive: true);
            }
            // PostgreSQL's files belong to the postgres user, but root (or the owner) removes them.
            Directory.Delete(_stack, recursive: true);
        }
    }

    private async Task<string> StackAsync(string command, TimeSpan timeout, bool throwOnFailure = true)
    {
        var environment = new Dictionary<string, string>
        {
            ["ORTHANCSEG_STACK_DIR"] = _stack,
            ["ORTHANCSEG_PG_PORT"] = PgPort.ToString(CultureInfo.InvariantCulture),
            ["ORTHANCSEG_ORTHANC_HTTP_PORT"] = HttpPort.ToString(CultureInfo.InvariantCulture),
            ["ORTHANCSEG_ORTHANC_DICOM_PORT"] = DicomPort.ToString(CultureInfo.InvariantCulture),
            ["ORTHANCSEG_OHIF_PORT"] = OhifPort.ToString(CultureInfo.InvariantCulture),
            ["ORTHANCSEG_WORKER_PORT"] = WorkerPort.ToString(CultureInfo.InvariantCulture),
            ["ORTHANCSEG_ADMINER_PORT"] = AdminerPort.ToString(CultureInfo.InvariantCulture),
            // The tests run after `make test` built the Release binaries; rebuilding them in place would pull
            // them from under the other tests' workers.
            ["ORTHANCSEG_NO_BUILD"] = "1",
        };
        try
        {
            return await ProcessRunner.RunAsync(Path.Combine(RepositoryPaths.OrthancConfig, "stack.sh"), [command], timeout, environment, RepositoryPaths.Root);
        }
        catch (InvalidOperationException) when (!throwOnFailure)
        {
            return "";
        }
    }

    private static List<string> ProcessesMentioning(string text)
    {
        var found = new List<string>();
        foreach (var directory in Directory.GetDirectories("/proc"))
        {
            try
            {
                var commandLine = File.ReadAllText(Path.Combine(directory, "cmdline")).Replace('\0', ' ');
                if (commandLine.Contains(text, StringComparison.Ordinal))
                {
                    found.Add($"{Path.GetFileName(directory)}: {commandLine}");
                }
            }
            catch (IOException)
            {
                // The process ended while being read.
            }
            catch (UnauthorizedAccessException)
            {
                // Not ours to read.
            }
        }
        return found;
    }

    private static bool Listening(int port)
    {
        using var client = new TcpClient();
        try
        {
            client.Connect(System.Net.IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
