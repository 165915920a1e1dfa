using Grpc.Core;
using Npgsql;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.Tests.Support;

namespace OrthancSeg.IntegrationTests.Records;

/// <summary>
/// The whole path as deployed: Orthanc with the PostgreSQL index and the bridge loaded (the stack's template),
/// the bridge pushing to the built worker, the worker recording into its own database. The worker's periodic
/// catch-up is turned off here, so every case and label below arrived through the bridge.
/// </summary>
public sealed class BridgeRecordingTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(240);

    [Fact]
    public async Task Fifty_series_through_the_bridge_become_fifty_cases_once_and_segs_for_ten_become_ten_accepted_labels()
    {
        // The bridge's gRPC modules are generated, not committed.
        await ProcessRunner.RunAsync(Path.Combine(RepositoryPaths.Root, "plugin-bridge", "generate.sh"), [], TimeSpan.FromSeconds(120));
        var orthanc = new OrthancServer();
        await orthanc.InitializeAsync();
        try
        {
            await using var worker = await WorkerProcess.StartAsync(orthanc.Postgres, new Dictionary<string, string>
            {
                ["OrthancSeg:Orthanc:Url"] = orthanc.BaseUrl.ToString(),
                ["OrthancSeg:Orthanc:Username"] = OrthancServer.Username,
                ["OrthancSeg:Orthanc:PasswordFile"] = orthanc.PasswordFile,
                ["OrthancSeg:Auth:BridgeTokenFile"] = orthanc.BridgeTokenFile,
                ["Kestrel:Endpoints:Grpc:Url"] = $"http://127.0.0.1:{orthanc.WorkerPort}",
                ["OrthancSeg:Records:CatchUpInterval"] = "01:00:00",
                ["OrthancSeg:Records:NewSeriesCheckDelay"] = "01:00:00",
            });
            using var channel = worker.CreateChannel();
            var workflows = new WorkflowService.WorkflowServiceClient(RecordsHarness.WithToken(channel, worker.AdminToken));
            await workflows.CreateWorkflowAsync(new CreateWorkflowRequest
            {
                Workflow = new Workflow
                {
                    Name = "liver-ct",
                    DatasetId = 501,
                    Selection = new SelectionRule { Modality = "CT", SeriesDescriptionPattern = "(?i)abdomen|liver" },
                    Labels = { new LabelDefinition { Value = 1, Name = "liver" } },
                },
            });

            var series = Enumerable.Range(0, 50).Select(_ => new TestSeries(slices: 3)).ToList();
            using var http = orthanc.CreateClient();
            foreach (var file in series.SelectMany(s => s.Files()))
            {
                await UploadAsync(http, file);
            }
            await WaitForCountAsync(worker, "SELECT count(*) FROM cases", 50, "50 cases from the bridge's StableSeries pushes");
            foreach (var s in series.Take(10))
            {
                await UploadAsync(http, s.Seg([new(1, "Segment 1")], [new(1, 1)], labelMap: true));
            }
            await WaitForCountAsync(worker, "SELECT count(*) FROM labels WHERE verdict = 'accepted'", 10, "10 accepted labels from the bridge's SEG pushes");

            Assert.Equal(50, await CountAsync(worker, "SELECT count(*) FROM cases"));
            Assert.Equal(10, await CountAsync(worker, "SELECT count(*) FROM labels"));
            // The bridge delivered it all: no series job came from the change log (whose keys carry the change's
            // sequence number, "@<seq>" or "@new<seq>.<round>", where pushes are "@push"). The start-up catch-up may
            // still have read changes if it ran late, so the cursor itself proves nothing.
            Assert.Equal(0, await CountAsync(worker, "SELECT count(*) FROM jobs WHERE kind = 'series' AND idempotency_key ~ '@(new)?[0-9]'"));
            Assert.Equal(50, await CountAsync(worker, "SELECT count(*) FROM jobs WHERE kind = 'series' AND idempotency_key LIKE '%@push'"));
            Assert.Equal(0, await CountAsync(worker, "SELECT count(*) FROM dead_letters"));
        }
        finally
        {
            await orthanc.DisposeAsync();
        }
    }

    private static async Task UploadAsync(HttpClient http, DicomFile file)
    {
        using var content = new ByteArrayContent(DicomWriter.ToBytes(file));
        content.Headers.ContentType = new("application/dicom");
        using var response = await http.PostAsync(new Uri("instances", UriKind.Relative), content);
        Assert.True(response.IsSuccessStatusCode, $"Orthanc refused an upload: {(int)response.StatusCode}");
    }

    private static async Task<long> CountAsync(WorkerProcess worker, string sql)
    {
        await using var connection = new NpgsqlConnection(worker.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task WaitForCountAsync(WorkerProcess worker, string sql, long expected, string what)
    {
        try
        {
            await ProcessRunner.WaitUntilAsync(async () => await CountAsync(worker, sql) >= expected, Patience, what);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message} (count {await CountAsync(worker, sql)})\n--- worker ---\n{Tail(worker.Output)}", e);
        }
    }

    private static string Tail(string text) => text.Length > 6000 ? text[^6000..] : text;
}
