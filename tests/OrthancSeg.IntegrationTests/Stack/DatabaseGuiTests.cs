using System.Text.Json;
using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.Tests.Support;

namespace OrthancSeg.IntegrationTests.Stack;

/// <summary>
/// The database GUI that `make up` serves: Adminer on loopback, in a real browser, with the read-only role make up
/// creates, over the plain-named views of schema browse; and the servers.json a site's own pgAdmin imports.
/// </summary>
[Collection(SupervisedStackCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class DatabaseGuiTests(SupervisedStack stack) : IAsyncLifetime
{
    private const string Workflow = "supervised-adminer";
    private const string Changed = "changed through Adminer";

    public async Task InitializeAsync()
    {
        if (!(await stack.CliAsync("workflows", "list")).Contains(Workflow, StringComparison.Ordinal))
        {
            await stack.CliAsync("workflows", "create", "--name", Workflow, "--dataset-id", "603", "--modality", "CT",
                "--series-description", "^Adminer", "--labels", "liver=1");
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Adminer_logs_in_with_the_read_only_role_shows_the_recorded_cases_and_PostgreSQL_refuses_an_update_made_through_it()
    {
        var series = new[] { new TestSeries(slices: 2, description: "Adminer one"), new TestSeries(slices: 2, description: "Adminer two") };
        foreach (var s in series)
        {
            await stack.UploadAsync(s.Files());
        }
        var keys = new List<string>();
        await ProcessRunner.WaitUntilAsync(async () =>
        {
            var cases = (await stack.Cases.ListCasesAsync(new ListCasesRequest { Workflow = Workflow, PageSize = 100 })).Cases;
            keys = [.. cases.Where(c => series.Any(s => s.SeriesInstanceUid == c.SeriesInstanceUid)).Select(c => c.CaseKey)];
            return keys.Count == series.Length;
        }, TimeSpan.FromMinutes(3), "both series to be recorded as cases");

        var screenshot = Path.Combine(RepositoryPaths.Artifacts, "adminer.png");
        File.Delete(screenshot);
        var output = await RunBrowserAsync(new Dictionary<string, string>
        {
            ["ADMINER_URL"] = $"http://127.0.0.1:{stack.AdminerPort}/",
            ["DB_USER"] = "orthancseg_browser",
            ["DB_PASSWORD"] = (await File.ReadAllTextAsync(Path.Combine(stack.StackDirectory, "secrets", "pg-browser-password"))).Trim(),
            ["CASE_KEYS"] = string.Join(',', keys),
            ["UPDATE_SQL"] = $"UPDATE public.cases SET series_description = '{Changed}'",
            ["SCREENSHOT"] = screenshot,
        });

        Assert.Contains("logged in as orthancseg_browser", output, StringComparison.Ordinal);
        Assert.Contains($"including {string.Join(", ", keys)}", output, StringComparison.Ordinal);
        Assert.Contains("refused: Error in query: ERROR: permission denied for table cases", output, StringComparison.Ordinal);
        Assert.Equal(0, await stack.CountAsync($"SELECT count(*) FROM cases WHERE series_description = '{Changed}'"));
    }

    [Fact]
    public async Task Make_up_writes_a_pgAdmin_servers_json_for_the_read_only_role_on_the_stacks_PostgreSQL()
    {
        using var servers = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(stack.StackDirectory, "pgadmin-servers.json")));
        var server = Assert.Single(servers.RootElement.GetProperty("Servers").EnumerateObject()).Value;
        Assert.Equal("127.0.0.1", server.GetProperty("Host").GetString());
        Assert.Equal(stack.PgPort, server.GetProperty("Port").GetInt32());
        Assert.Equal("orthancseg", server.GetProperty("MaintenanceDB").GetString());
        Assert.Equal("orthancseg_browser", server.GetProperty("Username").GetString());
        // pgAdmin asks for the password: it is not in the file.
        var password = (await File.ReadAllTextAsync(Path.Combine(stack.StackDirectory, "secrets", "pg-browser-password"))).Trim();
        Assert.DoesNotContain(password, servers.RootElement.GetRawText(), StringComparison.Ordinal);
    }

    private static async Task<string> RunBrowserAsync(Dictionary<string, string> environment)
    {
        if (!Directory.Exists(Path.Combine(RepositoryPaths.EndToEnd, "node_modules", "playwright-core")))
        {
            throw new InvalidOperationException($"playwright-core is not installed in {RepositoryPaths.EndToEnd}: run `npm ci` there (make test does).");
        }
        return await ProcessRunner.RunAsync("node", [Path.Combine(RepositoryPaths.EndToEnd, "adminer-read-only.mjs")], TimeSpan.FromMinutes(3),
            environment, RepositoryPaths.EndToEnd);
    }
}
