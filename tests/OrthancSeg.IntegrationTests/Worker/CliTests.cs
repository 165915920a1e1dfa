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
    public async Task Health_exits_2_with_a_clear_message_when_nothing_listens()
    {
        var url = $"http://127.0.0.1:{ProcessRunner.FreePort()}";

        var result = await CliProcess.RunAsync(["health", "--url", url]);

        Assert.Equal(2, result.ExitCode);
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
    public async Task Status_with_the_bridge_token_exits_2_and_says_the_token_was_refused()
    {
        var result = await CliProcess.RunAsync(["status", "--url", worker.Address, "--token-file", worker.BridgeTokenFile]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"The token from '{worker.BridgeTokenFile}' may not do this", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("has the role bridge", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(worker.BridgeToken, result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_without_a_token_file_exits_2_and_says_how_to_give_one()
    {
        var result = await CliProcess.RunAsync(["status", "--url", worker.Address]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--token-file", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("ORTHANCSEG_TOKEN_FILE", result.Stderr, StringComparison.Ordinal);
    }
}
