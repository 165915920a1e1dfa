using System.Text.Json;
using Grpc.Core;
using Npgsql;
using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Records;

/// <summary>
/// Who may take a case out of training and how the call is checked and recorded, on a running worker: operators may, viewers may not,
/// a reason is required and bounded, the CLI's exclude/include/list/show print it, and the audit log names the token. The cases are rows
/// written straight into the worker's database (as in <see cref="CasePagingTests"/>): no image is needed to exclude a case.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class CaseExclusionAccessTests(WorkerProcess worker) : IClassFixture<WorkerProcess>
{
    private const string Workflow = "exclusion-ct";

    [Fact]
    public async Task An_operator_excludes_a_viewer_may_not_a_reason_is_required_and_the_audit_list_names_the_token()
    {
        using var channel = worker.CreateChannel();
        await new WorkflowService.WorkflowServiceClient(channel).CreateWorkflowAsync(new CreateWorkflowRequest
        {
            Workflow = new Workflow { Name = Workflow, DatasetId = 45, Selection = new SelectionRule { Modality = "CT" }, Labels = { new LabelDefinition { Value = 1, Name = "liver" } } },
        }, WorkerProcess.Bearer(worker.AdminToken));
        await using var database = NpgsqlDataSource.Create(worker.ConnectionString);
        var key = (await CasePagingTests.InsertCasesAsync(database, 2000, 1, Workflow))[0];
        var cases = new CaseService.CaseServiceClient(channel);
        var viewer = WorkerProcess.Bearer(worker.ViewerToken);
        var operatorToken = WorkerProcess.Bearer(worker.OperatorToken);

        var denied = await Assert.ThrowsAsync<RpcException>(() =>
            cases.ExcludeCaseAsync(new ExcludeCaseRequest { CaseKey = key, Reason = "blurred" }, viewer).ResponseAsync);
        var blank = await Assert.ThrowsAsync<RpcException>(() =>
            cases.ExcludeCaseAsync(new ExcludeCaseRequest { CaseKey = key, Reason = " \t " }, operatorToken).ResponseAsync);
        var tooLong = await Assert.ThrowsAsync<RpcException>(() =>
            cases.ExcludeCaseAsync(new ExcludeCaseRequest { CaseKey = key, Reason = new string('x', 1001) }, operatorToken).ResponseAsync);
        var unknown = await Assert.ThrowsAsync<RpcException>(() =>
            cases.ExcludeCaseAsync(new ExcludeCaseRequest { CaseKey = "exclusionct_nosuchcase", Reason = "blurred" }, operatorToken).ResponseAsync);
        var includeDenied = await Assert.ThrowsAsync<RpcException>(() =>
            cases.IncludeCaseAsync(new IncludeCaseRequest { CaseKey = key }, viewer).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, includeDenied.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, blank.StatusCode);
        Assert.Equal("reason", Assert.Single(RecordingTests.BadRequestOf(blank).FieldViolations).Field);
        Assert.Equal(StatusCode.InvalidArgument, tooLong.StatusCode);
        Assert.Contains("1001 characters", Assert.Single(RecordingTests.BadRequestOf(tooLong).FieldViolations).Description, StringComparison.Ordinal);
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        Assert.False((await cases.GetCaseAsync(new GetCaseRequest { CaseKey = key }, viewer)).Case.Excluded);

        // The CLI as an operator runs it: a table with who, when and why; then the list of excluded cases and the case itself show it.
        var excluded = await Cli("cases", "exclude", key, "--reason", "contrast bolus missed", "--token-file", worker.OperatorTokenFile);
        Assert.Contains("excluded by olga at ", excluded, StringComparison.Ordinal);
        Assert.Contains(": contrast bolus missed", excluded, StringComparison.Ordinal);
        using (var listed = JsonDocument.Parse(await Cli("cases", "list", "--workflow", Workflow, "--excluded", "--json", "--token-file", worker.ViewerTokenFile)))
        {
            var only = Assert.Single(listed.RootElement.EnumerateArray());
            Assert.Equal(key, only.GetProperty("caseKey").GetString());
            Assert.True(only.GetProperty("excluded").GetBoolean());
            Assert.Equal("olga", only.GetProperty("excludedBy").GetString());
            Assert.Equal("contrast bolus missed", only.GetProperty("exclusionReason").GetString());
        }
        Assert.Contains("excluded by olga at ", await Cli("cases", "show", key, "--token-file", worker.ViewerTokenFile), StringComparison.Ordinal);
        // People browsing the database see it too: browse.cases was recreated with the exclusion's columns.
        await using (var browse = database.CreateCommand("SELECT excluded_by || ': ' || exclusion_reason FROM browse.cases WHERE case_key = @key AND excluded_at IS NOT NULL"))
        {
            browse.Parameters.Add(new NpgsqlParameter<string>("key", key));
            Assert.Equal("olga: contrast bolus missed", await browse.ExecuteScalarAsync());
        }
        var refused = await CliProcess.RunAsync(["cases", "include", key, "--url", worker.Address, "--token-file", worker.ViewerTokenFile]);
        Assert.True(refused.ExitCode == 7, $"a viewer's include (not allowed for its role) exited {refused.ExitCode}: {refused.Stderr}");
        using (var included = JsonDocument.Parse(await Cli("cases", "include", key, "--json", "--token-file", worker.OperatorTokenFile)))
        {
            Assert.False(included.RootElement.GetProperty("excluded").GetBoolean());
            Assert.Equal("", included.RootElement.GetProperty("exclusionReason").GetString());
        }
        Assert.Equal("[]", (await Cli("cases", "list", "--workflow", Workflow, "--excluded", "--json", "--token-file", worker.ViewerTokenFile)).Trim());

        using var audit = JsonDocument.Parse(await Cli("audit", "list", "--method", "ExcludeCase", "--limit", "0", "--json", "--token-file", worker.AdminTokenFile));
        var ours = audit.RootElement.EnumerateArray().Where(e => e.GetProperty("resource").GetString() == $"case_key={key}").ToList();
        Assert.Equal(["olga:OK", "olga:INVALID_ARGUMENT", "olga:INVALID_ARGUMENT", "vera:PERMISSION_DENIED"],
            ours.Select(e => $"{e.GetProperty("tokenName").GetString()}:{e.GetProperty("statusCode").GetString()}"));
        using var includes = JsonDocument.Parse(await Cli("audit", "list", "--method", "IncludeCase", "--token", "olga", "--json", "--token-file", worker.AdminTokenFile));
        Assert.Contains(includes.RootElement.EnumerateArray(), e => e.GetProperty("resource").GetString() == $"case_key={key}" && e.GetProperty("statusCode").GetString() == "OK");
    }

    /// <summary>Runs the CLI against the worker; fails the test when it does not exit 0.</summary>
    private async Task<string> Cli(params string[] arguments)
    {
        var result = await CliProcess.RunAsync([.. arguments, "--url", worker.Address]);
        Assert.True(result.ExitCode == 0, $"orthancseg {string.Join(' ', arguments)} exited {result.ExitCode}: {result.Stderr}\n{result.Stdout}");
        return result.Stdout;
    }
}
