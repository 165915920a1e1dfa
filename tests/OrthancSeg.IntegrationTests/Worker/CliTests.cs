using System.Text.Json;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Worker;

/// <summary>The built `orthancseg` CLI against a worker whose Orthanc is unreachable.</summary>
[Collection(PostgresCollection.Name)]
public sealed class CliTests(WorkerProcess worker) : IClassFixture<WorkerProcess>
{
    [Fact]
    public async Task Health_prints_serving_and_exits_0_without_a_token()
    {
        var result = await CliProcess.RunAsync(["health"], new Dictionary<string, string> { ["ORTHANCSEG_URL"] = worker.Address });

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("SERVING", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Health_exits_8_with_a_clear_message_when_nothing_listens()
    {
        var url = $"http://127.0.0.1:{ProcessRunner.FreePort()}";

        var result = await CliProcess.RunAsync(["health", "--url", url]);

        Assert.Equal(8, result.ExitCode);
        Assert.Contains($"Cannot reach the worker at {url}", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_prints_the_dependency_table_and_exits_1_when_orthanc_is_unreachable()
    {
        var result = await CliProcess.RunAsync(["status"], new Dictionary<string, string>
        {
            ["ORTHANCSEG_URL"] = worker.Address,
            ["ORTHANCSEG_TOKEN_FILE"] = worker.AdminTokenFile,
        });

        Assert.Equal(1, result.ExitCode);
        var lines = result.Stdout.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("postgresql", StringComparison.Ordinal) && l.Contains(" healthy ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("orthanc", StringComparison.Ordinal) && l.Contains("UNHEALTHY", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Status_json_reports_each_dependency()
    {
        var result = await CliProcess.RunAsync(["status", "--json", "--url", worker.Address, "--token-file", worker.AdminTokenFile]);

        Assert.Equal(1, result.ExitCode);
        using var json = JsonDocument.Parse(result.Stdout);
        Assert.False(json.RootElement.GetProperty("healthy").GetBoolean());
        var dependencies = json.RootElement.GetProperty("dependencies").EnumerateArray()
            .ToDictionary(d => d.GetProperty("name").GetString()!, d => d.GetProperty("healthy").GetBoolean());
        Assert.True(dependencies["postgresql"]);
        Assert.False(dependencies["orthanc"]);
    }

    [Fact]
    public async Task Status_with_the_bridge_token_exits_7_and_says_the_token_may_not()
    {
        var result = await CliProcess.RunAsync(["status", "--url", worker.Address, "--token-file", worker.BridgeTokenFile]);

        Assert.Equal(7, result.ExitCode);
        Assert.Contains($"The token from '{worker.BridgeTokenFile}' may not do this", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("has the role bridge", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(worker.BridgeToken, result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_without_a_token_file_exits_6_and_says_how_to_give_one()
    {
        var result = await CliProcess.RunAsync(["status", "--url", worker.Address]);

        Assert.Equal(6, result.ExitCode);
        Assert.Contains("--token-file", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("ORTHANCSEG_TOKEN_FILE", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wrong_token_exits_6()
    {
        var tokenFile = Path.Combine(Path.GetTempPath(), $"orthancseg-wrong-token-{Guid.NewGuid():N}");
        await WorkerProcess.WriteSecretAsync(tokenFile, "0123456789abcdef0123456789abcdef");
        try
        {
            var result = await CliProcess.RunAsync(["cases", "list", "--url", worker.Address, "--token-file", tokenFile]);

            Assert.Equal(6, result.ExitCode);
            Assert.Contains($"refused the token from '{tokenFile}'", result.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(tokenFile);
        }
    }

    [Fact]
    public async Task A_case_that_does_not_exist_exits_4()
    {
        var result = await CliProcess.RunAsync(["cases", "show", "liverct_nothere", "--url", worker.Address, "--token-file", worker.AdminTokenFile]);

        Assert.Equal(4, result.ExitCode);
        Assert.Contains("NotFound", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_command_line_that_does_not_parse_exits_2_without_asking_the_worker()
    {
        var unknown = await CliProcess.RunAsync(["cases", "list", "--colour", "--url", worker.Address]);
        var missing = await CliProcess.RunAsync(["snapshots", "export", "--url", worker.Address]);
        var badValue = await CliProcess.RunAsync(["jobs", "list", "--state", "sleeping", "--url", worker.Address, "--token-file", worker.AdminTokenFile]);

        Assert.Equal((2, 2, 2), (unknown.ExitCode, missing.ExitCode, badValue.ExitCode));
        Assert.Contains("--colour", unknown.Stderr, StringComparison.Ordinal);
        Assert.Contains("--workflow", missing.Stderr, StringComparison.Ordinal);
        Assert.Contains("--state sleeping is not a job state", badValue.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tables_fit_the_width_in_COLUMNS_by_cutting_the_detail_and_wide_prints_it_whole()
    {
        var environment = new Dictionary<string, string>
        {
            ["ORTHANCSEG_URL"] = worker.Address,
            ["ORTHANCSEG_TOKEN_FILE"] = worker.AdminTokenFile,
            ["COLUMNS"] = "60",
        };

        var fitted = await CliProcess.RunAsync(["status"], environment);
        var wide = await CliProcess.RunAsync(["status", "--wide"], environment);

        var table = DependencyTable(fitted.Stdout);
        Assert.NotEmpty(table);
        Assert.All(table, l => Assert.True(l.Length <= 60, $"'{l}' is wider than COLUMNS=60"));
        var orthanc = Assert.Single(table, l => l.StartsWith("orthanc", StringComparison.Ordinal));
        Assert.EndsWith("…", orthanc, StringComparison.Ordinal);
        var whole = Assert.Single(DependencyTable(wide.Stdout), l => l.StartsWith("orthanc", StringComparison.Ordinal));
        Assert.True(whole.Length > 60, whole);
        Assert.StartsWith(orthanc[..^1], whole, StringComparison.Ordinal);
    }

    // status prints sections; the dependency table runs from its header to the blank line before the next section.
    private static List<string> DependencyTable(string stdout) =>
        stdout.Split('\n').SkipWhile(l => !l.StartsWith("DEPENDENCY", StringComparison.Ordinal)).TakeWhile(l => l.Length > 0).ToList();
}
