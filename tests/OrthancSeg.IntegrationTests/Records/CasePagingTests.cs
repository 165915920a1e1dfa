using Grpc.Core;
using Npgsql;
using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Records;

/// <summary>
/// ListCases pages with opaque keyset tokens on a running worker: cases recorded while a client pages neither repeat nor hide the
/// cases it has not seen yet, and a token is only good for the request it came from. The cases are rows written straight into the
/// worker's database, as the recorder would, so that 270 of them cost no DICOM traffic.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class CasePagingTests(WorkerProcess worker) : IClassFixture<WorkerProcess>
{
    private const string Workflow = "paging-ct";

    [Fact]
    public async Task Paging_through_250_cases_while_20_new_ones_arrive_returns_every_case_that_existed_at_the_start_exactly_once()
    {
        using var channel = worker.CreateChannel();
        await new WorkflowService.WorkflowServiceClient(channel).CreateWorkflowAsync(new CreateWorkflowRequest
        {
            Workflow = new Workflow { Name = Workflow, DatasetId = 43, Selection = new SelectionRule { Modality = "CT" }, Labels = { new LabelDefinition { Value = 1, Name = "liver" } } },
        }, WorkerProcess.Bearer(worker.AdminToken));
        await using var database = NpgsqlDataSource.Create(worker.ConnectionString);
        var existing = await InsertCasesAsync(database, 0, 250);
        var cases = new CaseService.CaseServiceClient(channel);
        var viewer = WorkerProcess.Bearer(worker.ViewerToken);

        var seen = new List<string>();
        var arrived = new List<string>();
        var request = new ListCasesRequest { Workflow = Workflow, PageSize = 100 };
        var pages = 0;
        do
        {
            var page = await cases.ListCasesAsync(request, viewer);
            pages++;
            Assert.True(page.Cases.Count <= 100);
            seen.AddRange(page.Cases.Select(c => c.CaseKey));
            if (page.NextPageToken.Length > 0)
            {
                arrived.AddRange(await InsertCasesAsync(database, 250 + arrived.Count, 10));
            }
            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0);

        Assert.Equal(3, pages);
        Assert.Equal(20, arrived.Count);
        Assert.Equal(existing.Order(StringComparer.Ordinal), seen.Intersect(existing).Order(StringComparer.Ordinal));
        Assert.Equal(seen.Count, seen.Distinct().Count());
        Assert.Equal(250, seen.Count(existing.Contains));
        Assert.Equal(270, (await cases.ListCasesAsync(new ListCasesRequest { Workflow = Workflow, PageSize = 1000 }, viewer)).Cases.Count);
    }

    [Fact]
    public async Task A_page_token_passed_with_other_filters_or_made_up_is_invalid_argument()
    {
        using var channel = worker.CreateChannel();
        var cases = new CaseService.CaseServiceClient(channel);
        var viewer = WorkerProcess.Bearer(worker.ViewerToken);
        await new WorkflowService.WorkflowServiceClient(channel).CreateWorkflowAsync(new CreateWorkflowRequest
        {
            Workflow = new Workflow { Name = "tokens-ct", DatasetId = 44, Selection = new SelectionRule { Modality = "CT" }, Labels = { new LabelDefinition { Value = 1, Name = "liver" } } },
        }, WorkerProcess.Bearer(worker.AdminToken));
        await using var database = NpgsqlDataSource.Create(worker.ConnectionString);
        await InsertCasesAsync(database, 1000, 3, "tokens-ct");
        var token = (await cases.ListCasesAsync(new ListCasesRequest { Workflow = "tokens-ct", PageSize = 1 }, viewer)).NextPageToken;
        Assert.NotEqual("", token);

        var otherFilter = await Assert.ThrowsAsync<RpcException>(() =>
            cases.ListCasesAsync(new ListCasesRequest { Workflow = "tokens-ct", Status = CaseStatus.Labeled, PageSize = 1, PageToken = token }, viewer).ResponseAsync);
        var madeUp = await Assert.ThrowsAsync<RpcException>(() =>
            cases.ListCasesAsync(new ListCasesRequest { Workflow = "tokens-ct", PageToken = "MTAw" }, viewer).ResponseAsync);

        // The exclusion filter is part of what the token was for: false (in training) is a filter, not the same as unset.
        var otherExclusion = await Assert.ThrowsAsync<RpcException>(() =>
            cases.ListCasesAsync(new ListCasesRequest { Workflow = "tokens-ct", Excluded = false, PageSize = 1, PageToken = token }, viewer).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, otherExclusion.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, otherFilter.StatusCode);
        Assert.Contains("page_token", otherFilter.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.InvalidArgument, madeUp.StatusCode);
        Assert.Single((await cases.ListCasesAsync(new ListCasesRequest { Workflow = "tokens-ct", PageSize = 1, PageToken = token }, viewer)).Cases);
    }

    /// <summary>Records <paramref name="count"/> cases of the workflow, one row at a time in arrival order, and returns their keys.</summary>
    internal static async Task<List<string>> InsertCasesAsync(NpgsqlDataSource database, int from, int count, string workflow = Workflow)
    {
        var keys = new List<string>();
        for (var n = from; n < from + count; n++)
        {
            await using var command = database.CreateCommand("""
                INSERT INTO cases (workflow_id, case_key, orthanc_series_id, orthanc_study_id, study_instance_uid, series_instance_uid,
                                   sop_instance_uids, modality, instance_count)
                SELECT id, @key, @series, 'study-' || @workflow, '1.2.826.0.1.3680043.8.498.1', '1.2.826.0.1.3680043.8.498.2.' || @n, '{}', 'CT', 0
                FROM workflows WHERE name = @workflow
                RETURNING case_key
                """);
            command.Parameters.Add(new NpgsqlParameter<string>("key", $"{workflow.Replace("-", "", StringComparison.Ordinal)}_{n:D8}"));
            command.Parameters.Add(new NpgsqlParameter<string>("series", $"series-{workflow}-{n}"));
            command.Parameters.Add(new NpgsqlParameter<string>("workflow", workflow));
            command.Parameters.Add(new NpgsqlParameter<string>("n", n.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            keys.Add((string)(await command.ExecuteScalarAsync())!);
        }
        return keys;
    }
}
