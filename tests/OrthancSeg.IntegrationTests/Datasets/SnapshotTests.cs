using System.Globalization;
using System.Text.Json;
using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.IntegrationTests.Records;
using OrthancSeg.Tests.Support;
using static OrthancSeg.IntegrationTests.Datasets.SnapshotHarness;

namespace OrthancSeg.IntegrationTests.Datasets;

/// <summary>
/// Dataset snapshots end to end: the stack's Orthanc (PostgreSQL index, bridge), the built worker and CLI, and nibabel reading the result the
/// way nnU-Net's NibabelIO does.
/// </summary>
public sealed class SnapshotTests : IDisposable
{
    private const string DatasetFolder = "Dataset007_LiverCT";
    private readonly string _raw = Directory.CreateTempSubdirectory("orthancseg-nnunet-raw-").FullName;

    public void Dispose() => Directory.Delete(_raw, recursive: true);

    [Fact]
    public async Task Six_cases_with_ohif_style_segs_export_to_a_dataset_nibabel_reads_and_a_changed_label_rewrites_only_its_case()
    {
        await using var harness = await RecordsHarness.StartAsync(Settings(_raw));
        await CreateWorkflowAsync(harness);
        var series = Enumerable.Range(0, 6).Select(_ => new TestSeries(slices: 6, rows: 16, columns: 16)).ToList();
        for (var i = 0; i < series.Count; i++)
        {
            // One series stored JPEG-LS compressed: the worker has Orthanc transcode it.
            await UploadAsync(harness, PatternedFiles(series[i]), i == 5 ? "/usr/bin/dcmcjpls" : null);
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM cases", 6, Patience, "6 cases");
        var expectedSlices = new Dictionary<int, int[]>();
        for (var i = 0; i < series.Count; i++)
        {
            // BINARY with names (highdicom style), LABELMAP with OHIF's default names, and LABELMAP RLE as OHIF 3.13 stores it.
            var seg = i % 3 == 0
                ? series[i].Seg([new(1, "Liver"), new(2, "lesion")], [new(1, 1), new(3, 2)])
                : series[i].Seg([new(1, "Segment 1"), new(2, "Segment 2")], [new(2, 1), new(4, 2)], labelMap: true);
            expectedSlices[i] = i % 3 == 0 ? [1, 3] : [2, 4];
            await UploadAsync(harness, [seg], i % 3 == 2 ? "/usr/bin/dcmcrle" : null);
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM cases WHERE status = 'labeled'", 6, Patience, "6 labelled cases");
        var keys = (await harness.Cases.ListCasesAsync(new ListCasesRequest { Workflow = "liver-ct", PageSize = 100 })).Cases
            .ToDictionary(c => c.SeriesInstanceUid, c => c.CaseKey);

        var cli = await CliProcess.RunAsync(["snapshots", "export", "--workflow", "liver-ct", "--wait", "--json",
            "--url", harness.WorkerAddress, "--token-file", harness.AdminTokenFile]);
        Assert.True(cli.ExitCode == 0, $"export exited {cli.ExitCode}: {cli.Stderr}\n{cli.Stdout}\n{harness.WorkerLog()}");
        using var printed = JsonDocument.Parse(cli.Stdout);
        Assert.Equal("succeeded", printed.RootElement.GetProperty("state").GetString());
        var first = (await harness.Snapshots.GetSnapshotAsync(new GetSnapshotRequest { Id = printed.RootElement.GetProperty("id").GetInt64() })).Snapshot;
        // Its transfer: every instance and SEG fetched once, over a fetch time within the export's, and the rate the CLI prints is bytes over that time.
        Assert.Equal(6 * 6 + 6, first.InstancesRead);
        Assert.InRange(first.FetchMs, 1, first.DurationMs);
        Assert.Equal(first.InstancesRead, printed.RootElement.GetProperty("instancesRead").GetInt64());
        Assert.Equal(first.FetchMs, printed.RootElement.GetProperty("fetchMs").GetInt64());
        Assert.Equal(Math.Round(first.BytesRead / 1e3 / first.FetchMs, 1), printed.RootElement.GetProperty("megabytesPerSecond").GetDouble());

        var dataset = Path.Combine(_raw, DatasetFolder);
        Assert.Equal(dataset, first.DatasetPath);
        Assert.True(first.IncludedCount == 6 && first.ExcludedCount == 0,
            $"left out: {string.Join("; ", first.Excluded.Select(e => $"{e.CaseKey}: {e.Reason}"))}");
        Assert.True(first.Verification.Passed, string.Join("; ", first.Verification.Problems));
        Assert.Equal(12, first.Verification.CheckedFiles);
        Assert.Empty(Directory.GetDirectories(_raw, $".{DatasetFolder}.*"));

        using var inspected = await InspectAsync(dataset);
        var json = inspected.RootElement.GetProperty("dataset");
        Assert.Equal("CT", json.GetProperty("channel_names").GetProperty("0").GetString());
        Assert.Equal(["background=0", "liver=1", "tumor=2"],
            json.GetProperty("labels").EnumerateObject().Select(p => $"{p.Name}={p.Value.GetInt32()}"));
        Assert.Equal(6, json.GetProperty("numTraining").GetInt32());
        Assert.Equal(".nii.gz", json.GetProperty("file_ending").GetString());
        double[][] expectedAffine = [[-0.8, 0, 0, 10], [0, -0.8, 0, 10], [0, 0, 2.5, 100], [0, 0, 0, 1]];
        for (var i = 0; i < series.Count; i++)
        {
            var key = keys[series[i].SeriesInstanceUid];
            Assert.DoesNotContain(series[i].PatientId, key, StringComparison.Ordinal);
            var c = inspected.RootElement.GetProperty("cases").GetProperty(key);
            Assert.Equal([16, 16, 6], Ints(c.GetProperty("shape")));
            Assert.Equal([16, 16, 6], Ints(c.GetProperty("label_shape")));
            Assert.True(c.GetProperty("affines_equal").GetBoolean(), $"case {key}: image and label affines differ");
            Assert.True(c.GetProperty("zooms_equal").GetBoolean());
            Assert.True(c.GetProperty("sform_equals_qform").GetBoolean());
            var affine = c.GetProperty("affine").EnumerateArray().Select(row => row.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
            for (var r = 0; r < 4; r++)
            {
                for (var col = 0; col < 4; col++)
                {
                    Assert.Equal(expectedAffine[r][col], affine[r][col], 4);
                }
            }
            Assert.Equal("int16", c.GetProperty("image_dtype").GetString());
            Assert.Equal("uint8", c.GetProperty("label_dtype").GetString());
            Assert.Equal([0, 1, 2], Ints(c.GetProperty("label_values")));
            Assert.Equal(expectedSlices[i], Ints(c.GetProperty("painted_slices")));
            Assert.Equal(Enumerable.Range(0, 6).Select(k => (100 * k) + 18), Ints(c.GetProperty("voxel_c3_r5")));
        }
        foreach (var c in first.Cases)
        {
            Assert.Equal(c.ImageSha256, Sha256(Path.Combine(dataset, c.ImageFile)));
            Assert.Equal(c.LabelSha256, Sha256(Path.Combine(dataset, c.LabelFile)));
            Assert.False(c.Reused);
        }
        Assert.Equal(6, await harness.CountAsync($"SELECT count(*) FROM snapshot_cases WHERE snapshot_id = {first.Id}"));
        var datasetJsonText = await File.ReadAllTextAsync(Path.Combine(dataset, "dataset.json"));
        Assert.DoesNotContain("Test^Patient", datasetJsonText, StringComparison.Ordinal);
        // The snapshot records dataset.json byte for byte, so its hash is the file's.
        Assert.Equal(datasetJsonText, first.DatasetJson);
        Assert.Equal(Sha256(Path.Combine(dataset, "dataset.json")), first.DatasetJsonSha256);

        // A newer SEG of case 0 paints slice 2 only: the next snapshot rewrites that case and takes the other five over.
        var mtimes = Directory.EnumerateFiles(dataset, "*.nii.gz", SearchOption.AllDirectories).ToDictionary(f => f, File.GetLastWriteTimeUtc);
        var changed = series[0].Seg([new(1, "Liver")], [new(2, 1)]);
        await UploadAsync(harness, [changed]);
        var changedUid = changed.Dataset.GetString(DicomTags.SOPInstanceUID)!;
        await harness.WaitForCountAsync($"SELECT count(*) FROM labels WHERE sop_instance_uid = '{changedUid}' AND is_current", 1, Patience, "the new label to be current");

        // As a script runs it: progress on stderr (plain lines, stderr is no terminal here), the report on stdout.
        var rerun = await CliProcess.RunAsync(["snapshots", "export", "--workflow", "liver-ct", "--wait", "--url", harness.WorkerAddress, "--token-file", harness.AdminTokenFile]);
        Assert.True(rerun.ExitCode == 0, $"export exited {rerun.ExitCode}: {rerun.Stderr}\n{rerun.Stdout}");
        Assert.Contains("6/6 cases", rerun.Stderr, StringComparison.Ordinal);
        Assert.Contains("6 included (5 reused from the previous snapshot), 0 left out", rerun.Stdout, StringComparison.Ordinal);
        // Only the changed case was fetched again: its 6 slices and its new SEG.
        Assert.Matches(@"transfer +fetched [0-9.]+ MB \(7 instances\) in [0-9.]+ s, [0-9.]+ MB/s, [0-9.]+ instances/s", rerun.Stdout);
        var newest = (await harness.Snapshots.ListSnapshotsAsync(new ListSnapshotsRequest { Workflow = "liver-ct" })).Snapshots[0];
        var second = (await harness.Snapshots.GetSnapshotAsync(new GetSnapshotRequest { Id = newest.Id })).Snapshot;
        Assert.True(second.State == SnapshotState.Succeeded, second.Error);
        Assert.True(second.Id > first.Id);
        Assert.Equal(6, second.IncludedCount);
        Assert.Equal(5, second.ReusedCount);
        var changedKey = keys[series[0].SeriesInstanceUid];
        foreach (var c in second.Cases)
        {
            var before = first.Cases.Single(f => f.CaseKey == c.CaseKey);
            Assert.Equal(c.ImageSha256, Sha256(Path.Combine(dataset, c.ImageFile)));
            Assert.Equal(c.LabelSha256, Sha256(Path.Combine(dataset, c.LabelFile)));
            if (c.CaseKey == changedKey)
            {
                Assert.False(c.Reused);
                Assert.Equal(changedUid, c.LabelSopInstanceUid);
                Assert.NotEqual(before.LabelSha256, c.LabelSha256);
                Assert.NotEqual(mtimes[Path.Combine(dataset, c.LabelFile)], File.GetLastWriteTimeUtc(Path.Combine(dataset, c.LabelFile)));
            }
            else
            {
                Assert.True(c.Reused, $"case {c.CaseKey} was fetched again although neither its series nor its label changed");
                Assert.Equal((before.ImageSha256, before.LabelSha256), (c.ImageSha256, c.LabelSha256));
                Assert.Equal(mtimes[Path.Combine(dataset, c.ImageFile)], File.GetLastWriteTimeUtc(Path.Combine(dataset, c.ImageFile)));
                Assert.Equal(mtimes[Path.Combine(dataset, c.LabelFile)], File.GetLastWriteTimeUtc(Path.Combine(dataset, c.LabelFile)));
            }
        }
        using var again = await InspectAsync(dataset);
        Assert.Equal([2], Ints(again.RootElement.GetProperty("cases").GetProperty(changedKey).GetProperty("painted_slices")));
        Assert.Equal([0, 1], Ints(again.RootElement.GetProperty("cases").GetProperty(changedKey).GetProperty("label_values")));

        var list = await CliProcess.RunAsync(["snapshots", "list", "--url", harness.WorkerAddress, "--token-file", harness.AdminTokenFile]);
        Assert.Equal(0, list.ExitCode);
        Assert.Contains(dataset, list.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_series_with_a_missing_slice_and_one_with_uneven_spacing_are_left_out_with_their_reasons()
    {
        await using var harness = await RecordsHarness.StartAsync(Settings(_raw));
        await CreateWorkflowAsync(harness);
        var good = Enumerable.Range(0, 2).Select(_ => new TestSeries(slices: 5, rows: 8, columns: 8)).ToList();
        var gapped = new TestSeries(slices: 5, rows: 8, columns: 8);
        var uneven = new TestSeries(slices: 5, rows: 8, columns: 8);
        foreach (var s in good)
        {
            await UploadAsync(harness, PatternedFiles(s));
        }
        var gappedIds = await UploadAsync(harness, PatternedFiles(gapped));
        // The last slice sits 1.5 mm further than the spacing says.
        await UploadAsync(harness, PatternedFiles(uneven).Select((f, k) =>
        {
            if (k == 4)
            {
                f.Dataset.SetNumbers(DicomTags.ImagePositionPatient, DicomVR.DS, [-10, -10, 100 + (4 * uneven.Spacing) + 1.5]);
            }
            return f;
        }));
        await harness.WaitForCountAsync("SELECT count(*) FROM cases", 4, Patience, "4 cases");
        foreach (var s in good.Append(gapped).Append(uneven))
        {
            await UploadAsync(harness, [s.Seg([new(1, "liver")], [new(1, 1)])]);
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM cases WHERE status = 'labeled'", 3, Patience, "3 labelled cases");
        await harness.WaitForIdleAsync(Patience);
        // A slice of a labelled series disappears from the PACS after labelling: the export's own volume builder refuses it.
        using (var delete = await harness.Orthanc.DeleteAsync(new Uri($"instances/{gappedIds[2]}", UriKind.Relative)))
        {
            Assert.True(delete.IsSuccessStatusCode);
        }
        var keys = (await harness.Cases.ListCasesAsync(new ListCasesRequest { Workflow = "liver-ct", PageSize = 100 })).Cases
            .ToDictionary(c => c.SeriesInstanceUid, c => c.CaseKey);

        var started = (await harness.Snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot;
        var snapshot = await WaitForFinishAsync(harness, started.Id);

        Assert.True(snapshot.State == SnapshotState.Succeeded, snapshot.Error);
        Assert.Equal(good.Select(s => keys[s.SeriesInstanceUid]).Order(), snapshot.Cases.Select(c => c.CaseKey).Order());
        Assert.Equal(2, snapshot.ExcludedCount);
        var reasons = snapshot.Excluded.ToDictionary(e => e.CaseKey, e => e.Reason);
        // Who notices the deleted slice first is a race: the export's own volume builder, or the recording of the
        // series' change (the case becomes unusable). Either way the case is left out, saying a slice is missing.
        var gappedReason = reasons[keys[gapped.SeriesInstanceUid]];
        Assert.True(gappedReason.Contains("volume builder", StringComparison.Ordinal) || gappedReason.Contains("cannot be used as a volume", StringComparison.Ordinal), gappedReason);
        Assert.Contains("missing", gappedReason, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("uneven", reasons[keys[uneven.SeriesInstanceUid]], StringComparison.Ordinal);
        var dataset = Path.Combine(_raw, DatasetFolder);
        Assert.Equal(2, Directory.GetFiles(Path.Combine(dataset, "imagesTr")).Length);
        Assert.Equal(2, Directory.GetFiles(Path.Combine(dataset, "labelsTr")).Length);
        using var inspected = await InspectAsync(dataset);
        Assert.Equal(2, inspected.RootElement.GetProperty("dataset").GetProperty("numTraining").GetInt32());

        var show = await CliProcess.RunAsync(["snapshots", "show", started.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--url", harness.WorkerAddress, "--token-file", harness.AdminTokenFile]);
        Assert.Equal(0, show.ExitCode);
        Assert.Contains("uneven", show.Stdout, StringComparison.Ordinal);

        // A workflow with nothing usable fails, says why, and leaves no folder behind.
        await harness.Workflows.CreateWorkflowAsync(new CreateWorkflowRequest
        {
            Workflow = new Workflow { Name = "brain-mr", DatasetId = 8, Selection = new SelectionRule { Modality = "MR" }, Labels = { new LabelDefinition { Value = 1, Name = "tumor" } } },
        });
        var empty = await CliProcess.RunAsync(["snapshots", "export", "--workflow", "brain-mr", "--wait", "--url", harness.WorkerAddress, "--token-file", harness.AdminTokenFile]);
        Assert.Equal(1, empty.ExitCode);
        Assert.Contains("nothing to export", empty.Stdout, StringComparison.Ordinal);
        Assert.Empty(Directory.GetDirectories(_raw, "*Dataset008*"));

        // An export whose job died with its worker on the last attempt (the queue buried it when the lease expired, so no
        // runner recorded the end) is failed with the job's error instead of blocking the workflow's exports forever.
        var deadJob = await harness.CountAsync("""
            INSERT INTO jobs (kind, idempotency_key, payload, state, attempts, max_attempts, last_error, finished_at)
            VALUES ('snapshot', 'snapshot-orphan', '{"snapshot_id": 0}', 'dead', 3, 3, 'lease of w/1 expired during the last attempt (3 of 3)', now())
            RETURNING id
            """);
        var orphan = await harness.CountAsync($"""
            INSERT INTO snapshots (workflow_id, dataset_path, state, job_id)
            SELECT id, '{Path.Combine(_raw, DatasetFolder)}', 'running', {deadJob} FROM workflows WHERE name = 'liver-ct'
            RETURNING id
            """);
        var after = await WaitForFinishAsync(harness, (await harness.Snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot.Id);
        Assert.Equal(SnapshotState.Succeeded, after.State);
        var buried = (await harness.Snapshots.GetSnapshotAsync(new GetSnapshotRequest { Id = orphan })).Snapshot;
        Assert.Equal(SnapshotState.Failed, buried.State);
        Assert.Contains("lease of w/1 expired during the last attempt", buried.Error, StringComparison.Ordinal);

        // An export that fails every attempt (here nnUNet_raw is a file, as when a volume is not mounted) becomes a dead
        // letter; once the cause is fixed, retrying the dead letter from the CLI runs that same snapshot again.
        var away = _raw + ".away";
        Directory.Move(_raw, away);
        await File.WriteAllTextAsync(_raw, "not a folder");
        var doomed = (await harness.Snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot;
        var failed = await WaitForFinishAsync(harness, doomed.Id);
        File.Delete(_raw);
        Directory.Move(away, _raw);
        Assert.Equal(SnapshotState.Failed, failed.State);
        Assert.Contains(_raw, failed.Error, StringComparison.Ordinal);
        var letter = (await harness.Jobs.ListDeadLettersAsync(new ListDeadLettersRequest())).DeadLetters
            .Single(d => d.Kind == "snapshot" && d.Key.EndsWith($"snapshot-{doomed.Id}", StringComparison.Ordinal));
        var retry = await CliProcess.RunAsync(["dead-letters", "retry", letter.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--url", harness.WorkerAddress, "--token-file", harness.AdminTokenFile]);
        Assert.True(retry.ExitCode == 0, retry.Stderr);
        await harness.WaitForCountAsync($"SELECT count(*) FROM snapshots WHERE id = {doomed.Id} AND state = 'succeeded'", 1, Patience, "the retried snapshot to succeed");
        var revived = (await harness.Snapshots.GetSnapshotAsync(new GetSnapshotRequest { Id = doomed.Id })).Snapshot;
        Assert.Equal(2, revived.IncludedCount);
        Assert.Equal("", revived.Error);
        Assert.True(revived.Verification.Passed);

        // A dead letter discarded from the CLI ends for good: its job is cancelled, it is no longer listed, it cannot be retried,
        // and its snapshot stays failed.
        Directory.Move(_raw, away);
        await File.WriteAllTextAsync(_raw, "not a folder");
        var abandoned = (await harness.Snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot;
        Assert.Equal(SnapshotState.Failed, (await WaitForFinishAsync(harness, abandoned.Id)).State);
        File.Delete(_raw);
        Directory.Move(away, _raw);
        var dropped = (await harness.Jobs.ListDeadLettersAsync(new ListDeadLettersRequest())).DeadLetters
            .Single(d => d.Kind == "snapshot" && d.Key.EndsWith($"snapshot-{abandoned.Id}", StringComparison.Ordinal));
        var discard = await CliProcess.RunAsync(["dead-letters", "discard", dropped.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "--json",
            "--url", harness.WorkerAddress, "--token-file", harness.AdminTokenFile]);
        Assert.True(discard.ExitCode == 0, discard.Stderr);
        Assert.Equal("cancelled", JsonDocument.Parse(discard.Stdout).RootElement.GetProperty("state").GetString());
        Assert.DoesNotContain((await harness.Jobs.ListDeadLettersAsync(new ListDeadLettersRequest())).DeadLetters, d => d.Id == dropped.Id);
        var late = await Assert.ThrowsAsync<RpcException>(() => harness.Jobs.RetryDeadLetterAsync(new RetryDeadLetterRequest { Id = dropped.Id }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, late.StatusCode);
        Assert.Equal(SnapshotState.Failed, (await harness.Snapshots.GetSnapshotAsync(new GetSnapshotRequest { Id = abandoned.Id })).Snapshot.State);
    }

    [Fact]
    public async Task Killing_the_worker_mid_export_keeps_the_previous_dataset_and_the_retried_export_completes_it()
    {
        var (harness, series) = await SlowExportStackAsync(8);
        await using var _ = harness;
        var first = await WaitForFinishAsync(harness, (await harness.Snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot.Id);
        Assert.True(first.State == SnapshotState.Succeeded, first.Error);
        var dataset = Path.Combine(_raw, DatasetFolder);

        // New labels for every case, so the next export has to fetch every series again.
        foreach (var s in series)
        {
            await UploadAsync(harness, [s.Seg([new(1, "liver")], [new(20, 1)])]);
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM labels WHERE is_current AND 20 = ANY (painted_slices)", 8, Patience, "8 new current labels");
        var second = (await harness.Snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot;
        try
        {
            await ProcessRunner.WaitUntilAsync(async () =>
                await harness.CountAsync($"SELECT count(*) FROM snapshots WHERE id = {second.Id} AND state = 'running' AND cases_done >= 1") == 1,
                Patience, "the second export to be half-way");
        }
        catch (TimeoutException e)
        {
            var now = (await harness.Snapshots.GetSnapshotAsync(new GetSnapshotRequest { Id = second.Id })).Snapshot;
            throw new TimeoutException($"{e.Message}; snapshot {now.Id} is {now.State}, {now.CasesDone}/{now.CasesTotal} cases, error: {now.Error}\n--- worker log ---\n{harness.WorkerLog()}", e);
        }
        await harness.KillWorkerAsync();

        Assert.Equal(1, await harness.CountAsync($"SELECT count(*) FROM snapshots WHERE id = {second.Id} AND state = 'running' AND cases_done < 8"));
        // The killed attempt left its own scratch folder: .Dataset…building-<snapshot>.<attempt>.
        Assert.Single(Directory.GetDirectories(_raw, $".{DatasetFolder}.building-{second.Id}.1"));
        // The dataset folder still holds exactly the first snapshot.
        AssertDatasetIs(dataset, first);

        // The restarted worker sees that the process holding the export's lease has ended and takes the job over at
        // once (with the default lease of minutes, waiting for it to expire would outlast the test).
        await harness.StartWorkerAsync();
        var retried = await WaitForFinishAsync(harness, second.Id);
        Assert.Equal(2, await harness.CountAsync("SELECT attempts FROM jobs WHERE kind = 'snapshot' ORDER BY id DESC LIMIT 1"));
        Assert.True(retried.State == SnapshotState.Succeeded, retried.Error);
        Assert.Equal(8, retried.IncludedCount);
        Assert.True(retried.Verification.Passed);
        AssertDatasetIs(dataset, retried);
        Assert.Empty(Directory.GetDirectories(_raw, $".{DatasetFolder}.*"));
        using var inspected = await InspectAsync(dataset);
        Assert.All(inspected.RootElement.GetProperty("cases").EnumerateObject(), c => Assert.Equal([20], Ints(c.Value.GetProperty("painted_slices"))));
    }

    [Fact]
    public async Task Two_workers_asked_for_the_same_export_write_one_dataset_and_a_running_export_cancelled_from_the_cli_leaves_it_untouched()
    {
        var (harness, series) = await SlowExportStackAsync(6);
        await using var _ = harness;
        var (_, replica) = await harness.StartReplicaAsync();

        // The same export asked of both replicas at once: one snapshot, one job, one dataset.
        var asked = await Task.WhenAll(new[] { harness.Snapshots, replica }.Select(async snapshots =>
        {
            try
            {
                return (await snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.FailedPrecondition)
            {
                return null;
            }
        }));
        var started = Assert.Single(asked, a => a is not null)!;
        var first = await WaitForFinishAsync(harness, started.Id);
        Assert.True(first.State == SnapshotState.Succeeded, first.Error);
        Assert.Equal(1, await harness.CountAsync("SELECT count(*) FROM jobs WHERE kind = 'snapshot'"));
        var dataset = Path.Combine(_raw, DatasetFolder);
        AssertDatasetIs(dataset, first);
        Assert.Equal([dataset], Directory.GetDirectories(_raw));

        // New labels, so the next export fetches every series again; it is cancelled half-way from the CLI.
        foreach (var s in series)
        {
            await UploadAsync(harness, [s.Seg([new(1, "liver")], [new(20, 1)])]);
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM labels WHERE is_current AND 20 = ANY (painted_slices)", 6, Patience, "6 new current labels");
        var second = (await replica.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot;
        await ProcessRunner.WaitUntilAsync(async () =>
            await harness.CountAsync($"SELECT count(*) FROM snapshots WHERE id = {second.Id} AND state = 'running' AND cases_done >= 1") == 1,
            Patience, "the second export to be half-way");
        Assert.NotEmpty(Directory.GetDirectories(_raw, $".{DatasetFolder}.building-{second.Id}.*"));

        var cancelAsked = DateTimeOffset.UtcNow;
        var cli = await CliProcess.RunAsync(["jobs", "cancel", second.JobId.ToString(CultureInfo.InvariantCulture),
            "--url", harness.WorkerAddress, "--token-file", harness.AdminTokenFile]);

        // The job may run on either replica; the CLI answers once it stopped, or says the cancel is pending (exit 1).
        Assert.True(cli.ExitCode == 0 && cli.Stdout.Contains("is cancelled", StringComparison.Ordinal)
            || cli.ExitCode == 1 && cli.Stdout.Contains("the cancel takes effect", StringComparison.Ordinal),
            $"jobs cancel exited {cli.ExitCode}: {cli.Stderr}\n{cli.Stdout}\n{harness.WorkerLog()}");
        var cancelled = await WaitForFinishAsync(harness, second.Id);
        Assert.Equal(SnapshotState.Cancelled, cancelled.State);
        Assert.True(cancelled.FinishTime.ToDateTimeOffset() - cancelAsked < TimeSpan.FromSeconds(30), $"cancelled {cancelled.FinishTime.ToDateTimeOffset() - cancelAsked} after the request");
        Assert.Equal(JobState.Cancelled, (await harness.Jobs.GetJobAsync(new GetJobRequest { Id = second.JobId })).Job.State);
        AssertDatasetIs(dataset, first);
        Assert.Equal([dataset], Directory.GetDirectories(_raw));
        using var inspected = await InspectAsync(dataset);
        Assert.All(inspected.RootElement.GetProperty("cases").EnumerateObject(), c => Assert.Equal([10], Ints(c.Value.GetProperty("painted_slices"))));
    }

    /// <summary>
    /// A stack whose exports go one series and one request at a time (slow enough to be caught in the middle), with
    /// <paramref name="count"/> labelled cases of 40 slices each, every label painting slice 10.
    /// </summary>
    private async Task<(RecordsHarness Harness, List<TestSeries> Series)> SlowExportStackAsync(int count)
    {
        var harness = await RecordsHarness.StartAsync(Settings(_raw, new()
        {
            ["OrthancSeg:Datasets:SeriesInFlight"] = "1",
            ["OrthancSeg:Datasets:RequestsPerSeries"] = "1",
        }));
        try
        {
            await CreateWorkflowAsync(harness);
            var series = Enumerable.Range(0, count).Select(_ => new TestSeries(slices: 40, rows: 96, columns: 96)).ToList();
            foreach (var s in series)
            {
                await UploadAsync(harness, PatternedFiles(s));
            }
            await harness.WaitForCountAsync("SELECT count(*) FROM cases", count, Patience, $"{count} cases");
            foreach (var s in series)
            {
                await UploadAsync(harness, [s.Seg([new(1, "liver")], [new(10, 1)])]);
            }
            await harness.WaitForCountAsync("SELECT count(*) FROM cases WHERE status = 'labeled'", count, Patience, $"{count} labelled cases");
            return (harness, series);
        }
        catch
        {
            await harness.DisposeAsync();
            throw;
        }
    }

    private static void AssertDatasetIs(string dataset, Snapshot snapshot)
    {
        var expected = snapshot.Cases.SelectMany(c => new[] { (c.ImageFile, c.ImageSha256), (c.LabelFile, c.LabelSha256) }).OrderBy(f => f.Item1, StringComparer.Ordinal).ToList();
        var actual = Directory.EnumerateFiles(dataset, "*.nii.gz", SearchOption.AllDirectories)
            .Select(f => (Path.GetRelativePath(dataset, f), Sha256(f))).OrderBy(f => f.Item1, StringComparer.Ordinal).ToList();
        Assert.Equal(expected, actual);
    }

    private static int[] Ints(JsonElement array) => array.EnumerateArray().Select(v => v.GetInt32()).ToArray();
}
