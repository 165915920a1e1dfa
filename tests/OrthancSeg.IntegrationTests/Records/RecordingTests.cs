using Google.Rpc;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.Tests.Support;

namespace OrthancSeg.IntegrationTests.Records;

/// <summary>
/// Every stable series that matches a workflow becomes one case, every SEG a label: with real Orthanc,
/// its bridge, the built worker and PostgreSQL. Events reach the worker both through the bridge's pushes and
/// through the worker's catch-up of Orthanc's change log, so every event arrives at least twice.
/// </summary>
public sealed class RecordingTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    private const string AcceptedLabels = "SELECT count(*) FROM labels WHERE verdict = 'accepted'";
    private const string Cases = "SELECT count(*) FROM cases";

    private static async Task CreateLiverWorkflowAsync(RecordsHarness harness) =>
        await harness.Workflows.CreateWorkflowAsync(new CreateWorkflowRequest
        {
            Workflow = new Workflow
            {
                Name = "liver-ct",
                DatasetId = 501,
                Selection = new SelectionRule { Modality = "CT", SeriesDescriptionPattern = "(?i)abdomen|liver" },
                Labels = { new LabelDefinition { Value = 1, Name = "liver" }, new LabelDefinition { Value = 2, Name = "tumor", Synonyms = { "lesion" } } },
            },
        });

    [Fact]
    public async Task Fifty_series_become_fifty_cases_once_and_segs_for_ten_become_ten_accepted_labels()
    {
        await using var harness = await RecordsHarness.StartAsync();
        await CreateLiverWorkflowAsync(harness);
        var series = Enumerable.Range(0, 50).Select(_ => new TestSeries(slices: 3)).ToList();
        // A series no workflow admits stays out.
        var head = new TestSeries(slices: 3, description: "Head routine");
        foreach (var s in series.Append(head))
        {
            await harness.UploadSeriesAsync(s);
        }
        await harness.WaitForCountAsync(Cases, 50, Patience, "50 cases");

        for (var i = 0; i < 10; i++)
        {
            // Half BINARY (highdicom style), half LABELMAP with OHIF's default names.
            var seg = i % 2 == 0
                ? series[i].Seg([new(1, "Liver"), new(2, "lesion")], [new(0, 1), new(2, 2)], author: "Doe^Jane")
                : series[i].Seg([new(1, "Segment 1")], [new(1, 1)], labelMap: true);
            await harness.UploadAsync(seg);
        }
        await harness.WaitForCountAsync(AcceptedLabels, 10, Patience, "10 accepted labels");
        await harness.WaitForIdleAsync(Patience);

        Assert.Equal(50, await harness.CountAsync(Cases));
        Assert.Equal(50, await harness.CountAsync("SELECT count(DISTINCT series_instance_uid) FROM cases"));
        Assert.Equal(10, await harness.CountAsync("SELECT count(*) FROM labels"));
        Assert.Equal(10, await harness.CountAsync("SELECT count(*) FROM cases WHERE status = 'labeled'"));
        Assert.Equal(0, await harness.CountAsync("SELECT count(*) FROM dead_letters"));

        var cases = await harness.Cases.ListCasesAsync(new ListCasesRequest { Workflow = "liver-ct", Status = CaseStatus.Labeled, PageSize = 4 });
        Assert.Equal(4, cases.Cases.Count);
        Assert.NotEmpty(cases.NextPageToken);
        var first = series[0];
        var recorded = (await harness.Cases.ListCasesAsync(new ListCasesRequest { PageSize = 1000 })).Cases.Single(c => c.SeriesInstanceUid == first.SeriesInstanceUid);
        var full = (await harness.Cases.GetCaseAsync(new GetCaseRequest { CaseKey = recorded.CaseKey })).Case;
        Assert.Matches("^liverct_[a-z2-7]{8}$", full.CaseKey);
        Assert.Equal(first.SopInstanceUids, full.SopInstanceUids);
        Assert.Equal(first.FrameOfReferenceUid, full.FrameOfReferenceUid);
        Assert.Equal(3, full.Geometry.Slices);
        var label = Assert.Single((await harness.Labels.ListLabelsAsync(new ListLabelsRequest { CaseKey = full.CaseKey })).Labels);
        Assert.Equal(LabelVerdict.Accepted, label.Verdict);
        Assert.True(label.IsCurrent);
        Assert.Equal("Doe^Jane", label.Author);
        Assert.Equal(label, (await harness.Labels.GetLabelAsync(new GetLabelRequest { Id = label.Id })).Label);
        Assert.Equal([0, 2], label.PaintedSlices);
        Assert.Equal([SegmentMatch.Name, SegmentMatch.Synonym], label.Segments.Select(s => s.Match));
        var ohif = (await harness.Cases.ListCasesAsync(new ListCasesRequest { PageSize = 1000 })).Cases.Single(c => c.SeriesInstanceUid == series[1].SeriesInstanceUid);
        var ohifLabel = Assert.Single((await harness.Labels.ListLabelsAsync(new ListLabelsRequest { CaseKey = ohif.CaseKey })).Labels);
        Assert.Equal(SegmentMatch.OhifDefaultName, Assert.Single(ohifLabel.Segments).Match);
    }

    [Fact]
    public async Task A_jpeg_ls_compressed_seg_is_transcoded_by_orthanc_and_becomes_an_accepted_label()
    {
        await using var harness = await RecordsHarness.StartAsync();
        await CreateLiverWorkflowAsync(harness);
        var series = new TestSeries(slices: 3);
        await harness.UploadSeriesAsync(series);
        await harness.WaitForCountAsync(Cases, 1, Patience, "the case");

        // The worker carries no JPEG codecs: it must ask Orthanc to transcode (POST /modify with PascalCase keys).
        var directory = Directory.CreateTempSubdirectory("orthancseg-jls-").FullName;
        try
        {
            var native = Path.Combine(directory, "seg.dcm");
            var compressed = Path.Combine(directory, "seg-jls.dcm");
            await File.WriteAllBytesAsync(native, DicomWriter.ToBytes(series.Seg([new(1, "liver")], [new(1, 1)], labelMap: true)));
            await ProcessRunner.RunAsync("dcmcjpls", [native, compressed], TimeSpan.FromSeconds(30));
            Assert.Equal(TransferSyntaxes.JpegLsLossless, DicomReader.ReadFile(compressed).TransferSyntaxUid);
            await harness.UploadAsync(await File.ReadAllBytesAsync(compressed));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }

        await harness.WaitForCountAsync(AcceptedLabels, 1, Patience, "the accepted label");
        var recorded = Assert.Single((await harness.Cases.ListCasesAsync(new ListCasesRequest { PageSize = 10 })).Cases);
        var label = Assert.Single((await harness.Labels.ListLabelsAsync(new ListLabelsRequest { CaseKey = recorded.CaseKey })).Labels);
        Assert.Equal(LabelVerdict.Accepted, label.Verdict);
        Assert.Equal([1], label.PaintedSlices);
    }

    [Fact]
    public async Task Series_and_segs_uploaded_while_the_worker_is_down_are_all_recorded_once_when_it_starts()
    {
        await using var harness = await RecordsHarness.StartAsync();
        await CreateLiverWorkflowAsync(harness);
        await harness.StopWorkerAsync();

        var series = Enumerable.Range(0, 30).Select(_ => new TestSeries(slices: 3)).ToList();
        foreach (var s in series)
        {
            await harness.UploadSeriesAsync(s);
        }
        for (var i = 0; i < 10; i++)
        {
            await harness.UploadAsync(series[i].Seg([new(1, "liver")], [new(1, 1)]));
        }

        await harness.StartWorkerAsync();
        await harness.WaitForCountAsync(Cases, 30, Patience, "30 cases");
        await harness.WaitForCountAsync(AcceptedLabels, 10, Patience, "10 accepted labels");
        await harness.WaitForIdleAsync(Patience);
        Assert.Equal(30, await harness.CountAsync(Cases));
        Assert.Equal(10, await harness.CountAsync("SELECT count(*) FROM labels"));
        Assert.Equal(0, await harness.CountAsync("SELECT count(*) FROM pending_segmentations"));
    }

    [Fact]
    public async Task Orthanc_restarted_in_the_middle_of_an_upload_burst_loses_no_series()
    {
        await using var harness = await RecordsHarness.StartAsync();
        await CreateLiverWorkflowAsync(harness);
        var series = Enumerable.Range(0, 20).Select(_ => new TestSeries(slices: 3)).ToList();
        foreach (var s in series.Take(10))
        {
            await harness.UploadSeriesAsync(s);
        }
        // Within StableAge of the last upload: Orthanc forgets which series were about to become stable.
        await harness.RestartOrthancAsync();
        foreach (var s in series.Skip(10))
        {
            await harness.UploadSeriesAsync(s);
        }
        await harness.WaitForCountAsync(Cases, 20, Patience, "20 cases");
        await harness.WaitForIdleAsync(Patience);
        Assert.Equal(20, await harness.CountAsync(Cases));
        Assert.Equal(20, await harness.CountAsync("SELECT count(*) FROM cases WHERE instance_count = 3"));
    }

    [Fact]
    public async Task Every_event_delivered_twice_has_one_effect()
    {
        await using var harness = await RecordsHarness.StartAsync();
        await CreateLiverWorkflowAsync(harness);
        var series = Enumerable.Range(0, 5).Select(_ => new TestSeries(slices: 3)).ToList();
        foreach (var s in series)
        {
            await harness.UploadSeriesAsync(s);
        }
        var segIds = new List<string>();
        foreach (var s in series)
        {
            segIds.Add(await harness.UploadAsync(s.Seg([new(1, "liver")], [new(0, 1)])));
        }
        await harness.WaitForCountAsync(Cases, 5, Patience, "5 cases");
        await harness.WaitForCountAsync(AcceptedLabels, 5, Patience, "5 accepted labels");

        // The bridge's pushes, each twice, after the catch-up already recorded everything.
        var seriesIds = await OrthancSeriesIdsAsync(harness);
        foreach (var id in seriesIds)
        {
            var pushes = new[] { await harness.Events.NotifyStableSeriesAsync(new() { OrthancSeriesId = id }),
                await harness.Events.NotifyStableSeriesAsync(new() { OrthancSeriesId = id }) };
            Assert.False(pushes[1].Accepted);
        }
        foreach (var id in segIds)
        {
            await harness.Events.NotifySegmentationStoredAsync(new() { OrthancInstanceId = id, SopClassUid = "1.2.840.10008.5.1.4.1.1.66.4", ChangeSeq = 1 });
            var again = await harness.Events.NotifySegmentationStoredAsync(new() { OrthancInstanceId = id, SopClassUid = "1.2.840.10008.5.1.4.1.1.66.4", ChangeSeq = 1 });
            Assert.False(again.Accepted);
        }
        // And the whole change log replayed from the start, as after a lost cursor.
        await harness.CountAsync("UPDATE change_cursor SET last_seq = 0 RETURNING 1");
        await harness.WaitForCountAsync("SELECT last_seq FROM change_cursor", 1, Patience, "the catch-up to replay");
        await harness.WaitForIdleAsync(Patience);

        Assert.Equal(5, await harness.CountAsync(Cases));
        Assert.Equal(5, await harness.CountAsync("SELECT count(*) FROM labels"));
        Assert.Equal(5, await harness.CountAsync("SELECT count(*) FROM labels WHERE is_current"));
    }

    [Fact]
    public async Task Bad_segs_become_rejected_labels_or_pending_with_reasons_and_the_worker_stays_up()
    {
        await using var harness = await RecordsHarness.StartAsync();
        await CreateLiverWorkflowAsync(harness);
        var noSegments = new TestSeries(slices: 3);
        var unknownNames = new TestSeries(slices: 3);
        var malformed = new TestSeries(slices: 3);
        var elsewhere = new TestSeries(slices: 3);
        foreach (var s in new[] { noSegments, unknownNames, malformed })
        {
            await harness.UploadSeriesAsync(s);
        }
        await harness.WaitForCountAsync(Cases, 3, Patience, "3 cases");

        await harness.UploadAsync(noSegments.Seg([], [new(1, 1)]));
        await harness.UploadAsync(unknownNames.Seg([new(1, "kidney")], [new(1, 1)]));
        var broken = malformed.Seg([new(1, "liver")], [new(1, 1)]);
        // Three frames announced, pixel data for one: Orthanc stores it, the worker must say why it is unusable.
        broken.Dataset.SetString(OrthancSeg.Dicom.DicomTags.NumberOfFrames, OrthancSeg.Dicom.DicomVR.IS, "3");
        await harness.UploadAsync(broken);
        // References a series that is in no workflow (never uploaded).
        await harness.UploadAsync(elsewhere.Seg([new(1, "liver")], [new(1, 1)]));

        await harness.WaitForCountAsync("SELECT count(*) FROM labels WHERE verdict = 'rejected'", 3, Patience, "3 rejected labels");
        await harness.WaitForCountAsync("SELECT count(*) FROM pending_segmentations", 1, Patience, "1 pending segmentation");

        async Task<Label> LabelOf(TestSeries s)
        {
            var c = (await harness.Cases.ListCasesAsync(new ListCasesRequest { PageSize = 100 })).Cases.Single(x => x.SeriesInstanceUid == s.SeriesInstanceUid);
            return Assert.Single((await harness.Labels.ListLabelsAsync(new ListLabelsRequest { CaseKey = c.CaseKey })).Labels);
        }
        Assert.Contains("no segments", (await LabelOf(noSegments)).RejectionReason, StringComparison.Ordinal);
        var unknown = await LabelOf(unknownNames);
        Assert.Contains("'kidney'", unknown.RejectionReason, StringComparison.Ordinal);
        Assert.Contains("liver (1), tumor (2; also: lesion)", unknown.RejectionReason, StringComparison.Ordinal);
        Assert.Contains("cannot be read", (await LabelOf(malformed)).RejectionReason, StringComparison.Ordinal);
        var pending = Assert.Single((await harness.Labels.ListPendingSegmentationsAsync(new())).PendingSegmentations);
        Assert.Contains(elsewhere.SeriesInstanceUid, pending.Reason, StringComparison.Ordinal);

        // The series arrives later and matches: the waiting SEG becomes its label.
        await harness.UploadSeriesAsync(elsewhere);
        await harness.WaitForCountAsync(AcceptedLabels, 1, Patience, "the waiting SEG accepted");
        Assert.Equal(0, await harness.CountAsync("SELECT count(*) FROM pending_segmentations"));
        Assert.Equal(0, await harness.CountAsync("SELECT count(*) FROM dead_letters"));
        Assert.True(await harness.WorkerIsServingAsync());
    }

    [Fact]
    public async Task A_series_that_grows_updates_its_case_and_the_newest_accepted_manual_label_is_current()
    {
        await using var harness = await RecordsHarness.StartAsync();
        await CreateLiverWorkflowAsync(harness);
        var series = new TestSeries(slices: 5);
        var files = series.Files().ToList();
        foreach (var file in files.Take(3))
        {
            await harness.UploadAsync(file);
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM cases WHERE instance_count = 3", 1, Patience, "a case of 3 slices");
        // Painted on a slice that has not arrived yet: rejected for now, judged again when the series grows.
        var early = series.Seg([new(1, "liver")], [new(4, 1)]);
        early.Dataset.SetString(OrthancSeg.Dicom.DicomTags.ContentDate, OrthancSeg.Dicom.DicomVR.DA, "20261126");
        early.Dataset.SetString(OrthancSeg.Dicom.DicomTags.ContentTime, OrthancSeg.Dicom.DicomVR.TM, "101500");
        await harness.UploadAsync(early);
        await harness.WaitForCountAsync("SELECT count(*) FROM labels WHERE verdict = 'rejected' AND rejection_reason LIKE '%which is not an image of series%'", 1,
            Patience, "the early SEG rejected");
        foreach (var file in files.Skip(3))
        {
            await harness.UploadAsync(file);
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM cases WHERE instance_count = 5", 1, Patience, "the case grown to 5 slices");
        await harness.WaitForCountAsync("SELECT count(*) FROM labels WHERE verdict = 'accepted'", 1, Patience, "the early SEG accepted on the grown case");
        var grown = Assert.Single((await harness.Cases.ListCasesAsync(new ListCasesRequest())).Cases);
        var full = (await harness.Cases.GetCaseAsync(new GetCaseRequest { CaseKey = grown.CaseKey })).Case;
        Assert.Equal(series.SopInstanceUids, full.SopInstanceUids);
        Assert.Equal(5, full.Geometry.Slices);

        var older = series.Seg([new(1, "liver")], [new(0, 1)]);
        var newer = series.Seg([new(1, "liver")], [new(4, 1)]);
        // Saved half a second apart, and uploaded together: "newest" is the SEG's own content time, not arrival order.
        older.Dataset.SetString(OrthancSeg.Dicom.DicomTags.ContentTime, OrthancSeg.Dicom.DicomVR.TM, "101500.25");
        newer.Dataset.SetString(OrthancSeg.Dicom.DicomTags.ContentTime, OrthancSeg.Dicom.DicomVR.TM, "101500.75");
        older.Dataset.SetString(OrthancSeg.Dicom.DicomTags.ContentDate, OrthancSeg.Dicom.DicomVR.DA, "20261126");
        newer.Dataset.SetString(OrthancSeg.Dicom.DicomTags.ContentDate, OrthancSeg.Dicom.DicomVR.DA, "20261126");
        var rejected = series.Seg([new(1, "spleen")], [new(2, 1)]);
        var model = series.Seg([new(1, "liver", "AUTOMATIC")], [new(3, 1)]);
        foreach (var seg in new[] { newer, older, rejected, model })
        {
            await harness.UploadAsync(seg);
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM labels", 5, Patience, "5 labels");
        await harness.WaitForIdleAsync(Patience);
        var labels = (await harness.Labels.ListLabelsAsync(new ListLabelsRequest { CaseKey = grown.CaseKey })).Labels;
        var current = Assert.Single(labels, l => l.IsCurrent);
        Assert.Equal(newer.Dataset.GetString(OrthancSeg.Dicom.DicomTags.SOPInstanceUID), current.SopInstanceUid);
        Assert.Equal([4], current.PaintedSlices);
        // A model's SEG that fits is only proposed: training data once a person accepts it.
        var modelLabel = labels.Single(l => l.SopInstanceUid == model.Dataset.GetString(OrthancSeg.Dicom.DicomTags.SOPInstanceUID));
        Assert.Equal((LabelSource.Model, LabelVerdict.Proposed, false), (modelLabel.Source, modelLabel.Verdict, modelLabel.IsCurrent));
        Assert.Equal(3, labels.Count(l => l.Verdict == LabelVerdict.Accepted));
        Assert.Equal(CaseStatus.Labeled, (await harness.Cases.GetCaseAsync(new GetCaseRequest { CaseKey = grown.CaseKey })).Case.Status);
    }

    [Fact]
    public async Task A_paused_workflow_admits_nothing_new_and_picks_it_up_when_resumed()
    {
        await using var harness = await RecordsHarness.StartAsync();
        await CreateLiverWorkflowAsync(harness);
        await harness.Workflows.PauseWorkflowAsync(new PauseWorkflowRequest { Name = "liver-ct" });
        await harness.UploadSeriesAsync(new TestSeries(slices: 3));
        // Stable and processed: the series job ran and found no active workflow.
        await harness.WaitForCountAsync("SELECT count(*) FROM jobs WHERE kind = 'series' AND state = 'succeeded'", 1, Patience, "the series job");
        await harness.WaitForIdleAsync(Patience);
        Assert.Equal(0, await harness.CountAsync(Cases));

        var resumed = await harness.Workflows.ResumeWorkflowAsync(new ResumeWorkflowRequest { Name = "liver-ct" });
        Assert.Equal(WorkflowState.Active, resumed.Workflow.State);
        await harness.WaitForCountAsync(Cases, 1, Patience, "the backfilled case");
    }

    [Fact]
    public async Task Events_calls_with_missing_or_absurd_fields_or_wrong_tokens_are_refused_clearly()
    {
        await using var harness = await RecordsHarness.StartAsync();

        var missing = await Assert.ThrowsAsync<RpcException>(() => harness.Events.NotifyStableSeriesAsync(new NotifyStableSeriesRequest()).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, missing.StatusCode);
        Assert.Equal("orthanc_series_id", Assert.Single(BadRequestOf(missing).FieldViolations).Field);

        var absurd = await Assert.ThrowsAsync<RpcException>(() => harness.Events.NotifySegmentationStoredAsync(new NotifySegmentationStoredRequest
        {
            OrthancInstanceId = "../../etc/passwd",
            ChangeSeq = -5,
            SopClassUid = "1.2.840.10008.5.1.4.1.1.2",
        }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, absurd.StatusCode);
        Assert.Equal(["orthanc_instance_id", "change_seq", "sop_class_uid"], BadRequestOf(absurd).FieldViolations.Select(v => v.Field));
        Assert.Contains("not a segmentation SOP Class", absurd.Status.Detail, StringComparison.Ordinal);

        var wrongToken = new Events.EventsClient(RecordsHarness.WithToken(harness.Channel, "not-the-token"));
        var refused = await Assert.ThrowsAsync<RpcException>(() => wrongToken.NotifyStableSeriesAsync(new() { OrthancSeriesId = "00000000-00000000-00000000-00000000-00000000" }).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
        var anonymous = new Events.EventsClient(harness.Channel);
        var noToken = await Assert.ThrowsAsync<RpcException>(() => anonymous.NotifyStableSeriesAsync(new() { OrthancSeriesId = "00000000-00000000-00000000-00000000-00000000" }).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, noToken.StatusCode);
        var casesWithBridgeToken = new CaseService.CaseServiceClient(RecordsHarness.WithToken(harness.Channel, (await File.ReadAllTextAsync(harness.BridgeTokenFile)).Trim()));
        var crossed = await Assert.ThrowsAsync<RpcException>(() => casesWithBridgeToken.ListCasesAsync(new ListCasesRequest()).ResponseAsync);
        Assert.Contains(crossed.StatusCode, new[] { StatusCode.Unauthenticated, StatusCode.PermissionDenied });

        // A well-formed push for a series Orthanc does not have is accepted and comes to nothing.
        var ghost = await harness.Events.NotifyStableSeriesAsync(new() { OrthancSeriesId = "01234567-89abcdef-01234567-89abcdef-01234567", ChangeSeq = 7 });
        Assert.True(ghost.Accepted);
        await harness.WaitForIdleAsync(Patience);
        Assert.Equal(0, await harness.CountAsync(Cases));
        Assert.Equal(0, await harness.CountAsync("SELECT count(*) FROM dead_letters"));
        var health = await new Health.HealthClient(harness.Channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
    }

    [Fact]
    public async Task Workflow_requests_with_bad_fields_are_refused_per_field_and_update_changes_the_schema()
    {
        await using var harness = await RecordsHarness.StartAsync();
        var bad = await Assert.ThrowsAsync<RpcException>(() => harness.Workflows.CreateWorkflowAsync(new CreateWorkflowRequest
        {
            Workflow = new Workflow
            {
                Name = "Liver CT",
                DatasetId = 1000,
                Selection = new SelectionRule { SeriesDescriptionPattern = "(abdomen" },
                Labels = { new LabelDefinition { Value = 0, Name = "liver" }, new LabelDefinition { Value = 2, Name = "LIVER" } },
            },
        }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        var fields = BadRequestOf(bad).FieldViolations.Select(v => v.Field).ToList();
        Assert.Contains("workflow.name", fields);
        Assert.Contains("workflow.dataset_id", fields);
        Assert.Contains("workflow.selection.series_description_pattern", fields);
        Assert.Contains("workflow.labels[0].value", fields);
        Assert.Contains("workflow.labels[1]", fields);

        await CreateLiverWorkflowAsync(harness);
        var duplicate = await Assert.ThrowsAsync<RpcException>(() => CreateLiverWorkflowAsync(harness));
        Assert.Equal(StatusCode.AlreadyExists, duplicate.StatusCode);
        var missing = await Assert.ThrowsAsync<RpcException>(() => harness.Workflows.GetWorkflowAsync(new GetWorkflowRequest { Name = "lung-ct" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);

        var update = new UpdateWorkflowRequest
        {
            Workflow = new Workflow { Name = "liver-ct", Labels = { new LabelDefinition { Value = 1, Name = "liver", Synonyms = { "hepar" } } } },
            UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask { Paths = { "labels" } },
        };
        var updated = (await harness.Workflows.UpdateWorkflowAsync(update)).Workflow;
        Assert.Equal(["hepar"], Assert.Single(updated.Labels).Synonyms);
        Assert.Equal("CT", updated.Selection.Modality);
        var badMask = await Assert.ThrowsAsync<RpcException>(() => harness.Workflows.UpdateWorkflowAsync(new UpdateWorkflowRequest
        {
            Workflow = new Workflow { Name = "liver-ct", DatasetId = 7 },
            UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask { Paths = { "dataset_id" } },
        }).ResponseAsync);
        Assert.Equal("update_mask", Assert.Single(BadRequestOf(badMask).FieldViolations).Field);
    }

    internal static BadRequest BadRequestOf(RpcException e)
    {
        var status = e.GetRpcStatus() ?? throw new Xunit.Sdk.XunitException($"No rich status on {e.Status}");
        return status.GetDetail<BadRequest>() ?? throw new Xunit.Sdk.XunitException("No BadRequest detail");
    }

    private static async Task<IReadOnlyList<string>> OrthancSeriesIdsAsync(RecordsHarness harness)
    {
        using var response = await harness.Orthanc.GetAsync(new Uri("series", UriKind.Relative));
        response.EnsureSuccessStatusCode();
        using var json = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.EnumerateArray().Select(e => e.GetString()!).ToList();
    }
}
