using Npgsql;
using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.IntegrationTests.Records;

namespace OrthancSeg.IntegrationTests.Ohif;

/// <summary>
/// The factory's labelling loop as deployed: a CT series arrives in Orthanc and becomes a case; an annotator
/// paints it in OHIF and saves; Orthanc's bridge pushes the new SEG to the worker, which records it as the
/// case's accepted label on the slices that were painted. Every part is the real one: Orthanc with the stack's
/// configuration and the bridge, the built worker, nginx + OHIF 3.13.2 in Chromium driven like a user.
/// </summary>
public sealed class OhifLabelRecordingTests
{
    private const int Slices = 12;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_segmentation_painted_and_saved_in_OHIF_becomes_the_accepted_label_of_its_case_on_the_painted_slices()
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
            });
            using var channel = worker.CreateChannel();
            var admin = new Admin.AdminClient(RecordsHarness.WithToken(channel, worker.AdminToken));
            // OHIF names its first segment "Segment 1"; the workflow accepts OHIF's default names (value N for "Segment N").
            await admin.CreateWorkflowAsync(new CreateWorkflowRequest
            {
                Workflow = new Workflow
                {
                    Name = "ohif-phantom",
                    DatasetId = 601,
                    Selection = new SelectionRule { Modality = "CT", SeriesDescriptionPattern = "^Synthetic phantom$" },
                    Labels = { new LabelDefinition { Value = 1, Name = "sphere" } },
                },
            });

            using var series = await CtSeries.CreateAsync(Slices);
            await orthanc.UploadAsync(series.Files);
            await WaitForCountAsync(worker, $"SELECT count(*) FROM cases WHERE series_instance_uid = '{series.SeriesInstanceUid}'", 1, "the uploaded series to become a case");

            await using var ohif = await OhifServer.StartAsync(orthanc);
            int[] paintAt = [2, 7, 11];
            var report = await PaintAndSaveScript.RunAsync(ohif, series.StudyInstanceUid, Slices, paintAt, "Sphere by the e2e annotator",
                Path.Combine(RepositoryPaths.Artifacts, "ohif-paint-recorded"), orthanc.LogTail);
            Assert.Equal(paintAt, report.ShownSlices);
            Assert.Equal(200, report.StowStatus);

            await WaitForCountAsync(worker, "SELECT count(*) FROM labels", 1, "the SEG saved from OHIF to be recorded");
            await using var connection = new NpgsqlConnection(worker.ConnectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(
                """
                SELECT l.verdict, coalesce(l.rejection_reason, ''), l.is_current, l.painted_slices, l.sop_instance_uid, l.source, c.status,
                       l.segments->0->>'label_value', l.segments->0->>'segment_label'
                FROM labels l JOIN cases c ON c.id = l.case_id
                WHERE c.series_instance_uid = @series
                """, connection);
            command.Parameters.AddWithValue("series", series.SeriesInstanceUid);
            await using var reader = await command.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync(), "no label recorded for the painted series' case");
            var verdict = reader.GetString(0);
            Assert.True(verdict == "accepted", $"the label was {verdict}: {reader.GetString(1)}\n--- worker ---\n{Tail(worker.Output)}");
            Assert.True(reader.GetBoolean(2), "the accepted label is not the case's current label");
            // OHIF showed the axial stack in descending z: its slice k of 12 is the case's ascending slice 12 − k.
            Assert.Equal(paintAt.Select(k => Slices - k).Order().ToArray(), reader.GetFieldValue<int[]>(3));
            Assert.Equal(report.SegSopInstanceUid, reader.GetString(4));
            Assert.Equal("manual", reader.GetString(5));
            Assert.Equal("labeled", reader.GetString(6));
            Assert.Equal(("1", "Segment 1"), (reader.GetString(7), reader.GetString(8)));
            Assert.False(await reader.ReadAsync(), "more than one label recorded for one save");
        }
        finally
        {
            await orthanc.DisposeAsync();
        }
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
