using Grpc.Health.V1;
using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.Tests.Support;

namespace OrthancSeg.IntegrationTests.Records;

/// <summary>
/// Outages are not failures: with Orthanc stopped for minutes or PostgreSQL restarted under running jobs, every series still
/// becomes exactly one case, no job becomes a dead letter, and the worker is healthy afterwards.
/// </summary>
public sealed class OutageTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Orthanc_stopped_for_3_minutes_in_the_middle_of_a_20_series_upload_ends_with_20_cases_and_no_dead_letters()
    {
        await using var harness = await RecordsHarness.StartAsync();
        await CreateWorkflowAsync(harness);
        var series = Enumerable.Range(0, 20).Select(_ => new TestSeries(slices: 4, rows: 8, columns: 8)).ToList();
        foreach (var s in series.Take(10))
        {
            await harness.UploadSeriesAsync(s);
        }
        // Recording jobs exist for the first half (catch-up saw their NewSeries changes; they are due seconds later), so they
        // run against an Orthanc that is gone. With attempts spent on it they would be dead letters within a minute.
        await harness.WaitForCountAsync("SELECT count(*) FROM jobs WHERE kind = 'series' AND state <> 'succeeded'", 1, Patience, "pending series jobs");

        await harness.OrthancServer.StopAsync();
        await Task.Delay(TimeSpan.FromMinutes(3));
        var duringOutage = await harness.CountAsync("SELECT count(*) FROM jobs WHERE state = 'dead'");
        var waits = await harness.CountAsync("SELECT coalesce(sum(waits), 0) FROM jobs");
        await harness.OrthancServer.StartAsync();

        foreach (var s in series.Skip(10))
        {
            await harness.UploadSeriesAsync(s);
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM cases", 20, Patience, "20 cases");
        await harness.WaitForIdleAsync(Patience);

        Assert.Equal(0, duringOutage);
        Assert.True(waits > 0, "no job met the outage, so the test proved nothing");
        Assert.Equal(0, await harness.CountAsync("SELECT count(*) FROM dead_letters"));
        Assert.Equal(20, await harness.CountAsync("SELECT count(*) FROM cases"));
        Assert.Equal(20, await harness.CountAsync("SELECT count(DISTINCT series_instance_uid) FROM cases"));
        Assert.Equal(series.Select(s => s.SeriesInstanceUid).Order(StringComparer.Ordinal),
            (await harness.Cases.ListCasesAsync(new ListCasesRequest { Workflow = "ct", PageSize = 100 })).Cases.Select(c => c.SeriesInstanceUid).Order(StringComparer.Ordinal));
        Assert.True(await harness.WorkerIsServingAsync());
    }

    [Fact]
    public async Task PostgreSQL_restarted_while_jobs_run_loses_no_job_does_none_twice_and_the_worker_is_healthy_again()
    {
        // The worker's database on a server of its own, so the restart is the worker's outage alone (Orthanc keeps its index).
        await using var harness = await RecordsHarness.StartAsync(ownDatabaseServer: true);
        await CreateWorkflowAsync(harness);
        var series = Enumerable.Range(0, 12).Select(_ => new TestSeries(slices: 4, rows: 8, columns: 8)).ToList();
        var uploads = Task.Run(async () =>
        {
            foreach (var s in series)
            {
                await harness.UploadSeriesAsync(s);
            }
        });
        await harness.WaitForCountAsync("SELECT count(*) FROM cases", 2, Patience, "the first cases");

        await harness.WorkerDatabaseServer.RestartAsync(downFor: TimeSpan.FromSeconds(5));
        await uploads;

        await harness.WaitForCountAsync("SELECT count(*) FROM cases", 12, Patience, "12 cases");
        await harness.WaitForIdleAsync(Patience);
        Assert.Equal(12, await harness.CountAsync("SELECT count(DISTINCT series_instance_uid) FROM cases"));
        Assert.Equal(0, await harness.CountAsync("SELECT count(*) FROM dead_letters"));
        // Every job ran to success, and none spent a second attempt: a job interrupted by the restart was handed back or
        // finished once the database answered again, not run twice.
        Assert.Equal(0, await harness.CountAsync("SELECT count(*) FROM jobs WHERE state <> 'succeeded' OR attempts > 1"));
        await ProcessRunner.WaitUntilAsync(harness.WorkerIsServingAsync, Patience, "the worker to report SERVING again");
    }

    private static async Task CreateWorkflowAsync(RecordsHarness harness)
    {
        var request = new CreateWorkflowRequest
        {
            Workflow = new Workflow { Name = "ct", DatasetId = 11, DatasetName = "Ct", Selection = new SelectionRule { Modality = "CT" } },
        };
        request.Workflow.Labels.Add(new LabelDefinition { Name = "liver", Value = 1 });
        await harness.Workflows.CreateWorkflowAsync(request);
    }
}
