using System.Text.Json;
using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Nifti;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Volumes;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.IntegrationTests.Records;
using OrthancSeg.IntegrationTests.Training;
using OrthancSeg.Tests.Support;
using static OrthancSeg.IntegrationTests.Datasets.SnapshotHarness;

namespace OrthancSeg.IntegrationTests.Inference;

/// <summary>
/// Inference end to end on the local backend: a model trained by the worker on a real snapshot (nnU-Net stand-ins), activated; new series
/// uploaded to Orthanc are predicted by the stand-in nnUNetv2_predict through the job engine and the launcher, and the SEG comes back into
/// Orthanc, where the bridge announces it again.
/// </summary>
public sealed class InferenceTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);
    private readonly string _root = Directory.CreateTempSubdirectory("orthancseg-inference-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string ModeFile => Path.Combine(_root, "predict-mode");

    private string Predictions => Path.Combine(_root, "predictions");

    private string Starts => Path.Combine(_root, "invocations.jsonl");

    private string Ends => Path.Combine(_root, "ends.jsonl");

    private Dictionary<string, string> WorkerSettings()
    {
        var raw = Path.Combine(_root, "nnUNet_raw");
        Directory.CreateDirectory(raw);
        return Settings(raw, new Dictionary<string, string>
        {
            ["OrthancSeg:Training:NnUnet:BinDirectory"] = NnUnetStandIn.BinDirectory,
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_EPOCHS"] = "1",
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_STEP_SECONDS"] = "0.05",
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_PREDICT_MODE_FILE"] = ModeFile,
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_PREDICTIONS"] = Predictions,
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_RECORD"] = Starts,
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_RECORD_ENDS"] = Ends,
            ["OrthancSeg:Training:Local:Gpus:0"] = "0",
            ["OrthancSeg:Training:Local:Gpus:1"] = "1",
            ["OrthancSeg:Training:Local:Cpus"] = "4",
            ["OrthancSeg:Training:Local:MemoryMiB"] = "8000",
            ["OrthancSeg:Training:Local:KillGracePeriod"] = "00:00:05",
            ["OrthancSeg:Inference:Gpus"] = "1",
            ["OrthancSeg:Inference:Cpus"] = "1",
            ["OrthancSeg:Inference:MemoryMiB"] = "1000",
            ["OrthancSeg:Inference:MaxAttempts"] = "2",
        });
    }

    internal static InferenceService.InferenceServiceClient Inference(RecordsHarness harness) =>
        new(RecordsHarness.WithToken(harness.Channel, File.ReadAllText(harness.AdminTokenFile).Trim()));

    /// <summary>A model of workflow liver-ct, trained on six labelled series (fold 0) and activated.</summary>
    internal static async Task<long> ActiveModelAsync(RecordsHarness harness)
    {
        var snapshot = await TrainingRunTests.SnapshotAsync(harness);
        var run = (await TrainingRunTests.Training(harness).StartTrainingAsync(new StartTrainingRequest
        {
            Workflow = "liver-ct",
            SnapshotId = snapshot.Id,
            Folds = { "0" },
            Backend = TrainingBackend.Local,
            Resources = new TrainingResources { Gpus = 1, Cpus = 1, MemoryMib = 1000, TimeLimitSeconds = 600 },
        })).Run;
        var ended = (await TrainingRunTests.WatchAsync(harness, run.Id))[^1];
        Assert.True(ended.State == TrainingState.Succeeded, $"training ended {ended.State}: {ended.Error}");
        await TrainingRunTests.Models(harness).ActivateModelAsync(new ActivateModelRequest { Id = ended.ModelId });
        return ended.ModelId;
    }

    private static async Task<string> CliAsync(RecordsHarness harness, params string[] arguments)
    {
        var result = await CliProcess.RunAsync([.. arguments, "--url", harness.WorkerAddress, "--token-file", harness.AdminTokenFile]);
        Assert.True(result.ExitCode == 0, $"orthancseg {string.Join(' ', arguments)} exited {result.ExitCode}: {result.Stderr}\n{result.Stdout}");
        return result.Stdout;
    }

    private static Task<CliResult> CliResultAsync(RecordsHarness harness, params string[] arguments) =>
        CliProcess.RunAsync([.. arguments, "--url", harness.WorkerAddress, "--token-file", harness.AdminTokenFile]);

    internal static async Task<Case> CaseOfAsync(RecordsHarness harness, TestSeries series)
    {
        await harness.WaitForCountAsync($"SELECT count(*) FROM cases WHERE series_instance_uid = '{series.SeriesInstanceUid}'", 1, Patience, "the new case");
        var listed = await harness.Cases.ListCasesAsync(new ListCasesRequest { Workflow = "liver-ct", PageSize = 100 });
        var key = listed.Cases.Single(c => c.SeriesInstanceUid == series.SeriesInstanceUid).CaseKey;
        return (await harness.Cases.GetCaseAsync(new GetCaseRequest { CaseKey = key })).Case;
    }

    private static async Task<IReadOnlyList<Label>> LabelsAsync(RecordsHarness harness, string caseKey) =>
        (await harness.Labels.ListLabelsAsync(new ListLabelsRequest { CaseKey = caseKey })).Labels;

    private static async Task<byte[]> OrthancFileAsync(RecordsHarness harness, string instanceId) =>
        await harness.Orthanc.GetByteArrayAsync(new Uri($"instances/{instanceId}/file", UriKind.Relative));

    /// <summary>The SEG decoded by our reader onto the series' grid, with the workflow's names.</summary>
    private static byte[] Decode(byte[] seg, TestSeries series) =>
        SegmentationReader.Read(DicomReader.Read(seg), SeriesVolumeBuilder.Build(PatternedFiles(series)).Grid,
            new OrthancSeg.Dicom.Segmentation.SegmentMapping([new("liver", 1), new("tumor", 2)])).LabelMap.Data;

    [Fact]
    public async Task A_new_series_gets_its_prediction_stored_back_as_a_proposed_model_label_that_people_accept_reject_and_replace_by_an_import()
    {
        await using var harness = await RecordsHarness.StartAsync(WorkerSettings());
        var modelId = await ActiveModelAsync(harness);
        Assert.Contains("on: new cases are predicted by the active model", await CliAsync(harness, "workflows", "auto-infer", "liver-ct", "on"), StringComparison.Ordinal);

        // A new series: recorded as a case, predicted, its SEG stored in the same study and recorded as the model's proposal.
        var series = new TestSeries(slices: 4, rows: 16, columns: 16);
        await UploadAsync(harness, PatternedFiles(series));
        var c = await CaseOfAsync(harness, series);
        await harness.WaitForCountAsync($"SELECT count(*) FROM inferences i JOIN cases c ON c.id = i.case_id WHERE i.state = 'succeeded' AND c.case_key = '{c.CaseKey}'",
            1, Patience, "the auto-inference");
        var inference = (await Inference(harness).ListInferencesAsync(new ListInferencesRequest { CaseKey = c.CaseKey })).Inferences.Single();
        Assert.Equal((InferenceTrigger.Auto, InferenceOutcome.SegStored, modelId, 1), (inference.Trigger, inference.Outcome, inference.ModelId, inference.Attempts));
        Assert.True(inference.WorkerMs > 0 && inference.PredictorMs > 0);
        using (var seg = JsonDocument.Parse(await harness.Orthanc.GetStringAsync(new Uri($"instances/{inference.SegOrthancInstanceId}/tags?simplify", UriKind.Relative))))
        {
            var tags = seg.RootElement;
            Assert.Equal((series.StudyInstanceUid, "SEG"), (tags.GetProperty("StudyInstanceUID").GetString(), tags.GetProperty("Modality").GetString()));
            Assert.Equal(inference.SegSopInstanceUid, tags.GetProperty("SOPInstanceUID").GetString());
            Assert.Contains($"model {modelId}", tags.GetProperty("SeriesDescription").GetString(), StringComparison.Ordinal);
        }
        var labels = await LabelsAsync(harness, c.CaseKey);
        var proposed = Assert.Single(labels);
        Assert.Equal((LabelSource.Model, LabelVerdict.Proposed, false, inference.LabelId), (proposed.Source, proposed.Verdict, proposed.IsCurrent, proposed.Id));
        Assert.Equal(["liver", "tumor"], proposed.Segments.Select(s => s.SegmentLabel));

        // The stored SEG is clean for dciodvfy and decodes, with our reader and with pydicom, to exactly the predicted label map.
        var segBytes = await OrthancFileAsync(harness, inference.SegOrthancInstanceId);
        var segFile = Path.Combine(_root, "prediction.dcm");
        await File.WriteAllBytesAsync(segFile, segBytes);
        var dciodvfy = await ProcessRunner.RunAsync("/bin/sh", ["-c", "command -v dciodvfy >/dev/null || exit 127; dciodvfy \"$0\" 2>&1; true", segFile], TimeSpan.FromMinutes(1));
        Assert.DoesNotContain(dciodvfy.Split('\n'), line => line.StartsWith("Error", StringComparison.Ordinal));
        var predictionFile = Path.Combine(Predictions, c.CaseKey + ".nii.gz");
        var predicted = NiftiReader.ReadFile(predictionFile).ToVolume(VoxelType.UInt8).Data;
        Assert.Contains(predicted, v => v == 2);
        Assert.Equal(predicted, Decode(segBytes, series));
        var pydicom = await ProcessRunner.RunAsync("/usr/bin/python3", [Path.Combine(RepositoryPaths.Root, "tests", "OrthancSeg.IntegrationTests", "Inference", "seg_equals_nifti.py"),
            segFile, predictionFile, string.Join(',', c.SopInstanceUids)], TimeSpan.FromMinutes(1));
        Assert.Equal("equal", pydicom.Trim().Split('\n')[^1]);

        // The bridge brings the stored SEG back as a new SEG: recording recognises the model label, it records no manual label.
        await harness.WaitForCountAsync(
            $"SELECT count(*) FROM jobs WHERE kind = 'segmentation' AND state = 'succeeded' AND payload->>'orthanc_instance_id' = '{inference.SegOrthancInstanceId}'",
            1, Patience, "the SEG's recording");
        Assert.Equal((LabelSource.Model, LabelVerdict.Proposed), (Assert.Single(await LabelsAsync(harness, c.CaseKey)).Source, proposed.Verdict));
        Assert.Equal(1, await harness.CountAsync("SELECT count(*) FROM inferences"));

        // A person accepts it: training data and current. Then rejects it with a reason: neither.
        await CliAsync(harness, "labels", "accept", $"{proposed.Id}");
        var accepted = Assert.Single(await LabelsAsync(harness, c.CaseKey));
        Assert.Equal((LabelVerdict.Accepted, true), (accepted.Verdict, accepted.IsCurrent));
        Assert.Equal(1, await harness.CountAsync($"SELECT count(*) FROM cases WHERE case_key = '{c.CaseKey}' AND status = 'labeled'"));
        var noReason = await CliResultAsync(harness, "labels", "reject", $"{proposed.Id}", "--reason", " ");
        Assert.Equal(2, noReason.ExitCode);
        await CliAsync(harness, "labels", "reject", $"{proposed.Id}", "--reason", "misses the left lobe");
        var rejected = Assert.Single(await LabelsAsync(harness, c.CaseKey));
        Assert.Equal((LabelVerdict.Rejected, false, "misses the left lobe"), (rejected.Verdict, rejected.IsCurrent, rejected.RejectionReason));
        var acceptRejected = await CliResultAsync(harness, "labels", "accept", $"{proposed.Id}");
        Assert.Equal(5, acceptRejected.ExitCode);
        Assert.Contains("FailedPrecondition", acceptRejected.Stderr, StringComparison.Ordinal);

        // A label map drawn elsewhere (here: the prediction with one voxel changed) is imported: accepted, current, its SEG decodes to the same voxels.
        var drawn = NiftiReader.ReadFile(predictionFile).ToVolume(VoxelType.UInt8);
        drawn.Data[0] = 1;
        var drawnFile = Path.Combine(_root, "drawn.nii.gz");
        NiftiWriter.WriteFile(drawn, drawnFile);
        using var imported = JsonDocument.Parse(await CliAsync(harness, "labels", "import", "--case", c.CaseKey, drawnFile, "--author", "Dr Slicer", "--json"));
        Assert.Equal(("import", "accepted", true), (imported.RootElement.GetProperty("source").GetString(), imported.RootElement.GetProperty("verdict").GetString(),
            imported.RootElement.GetProperty("isCurrent").GetBoolean()));
        Assert.Equal(drawn.Data, Decode(await OrthancFileAsync(harness, imported.RootElement.GetProperty("orthancInstanceId").GetString()!), series));

        // A label map on another grid is refused with the reason, and nothing is recorded.
        var shifted = new Volume(new VolumeGeometry(16, 16, 4, drawn.Geometry.Spacing, drawn.Geometry.Origin + new Vector3D(0, 0, 7.5),
            drawn.Geometry.RowDirection, drawn.Geometry.ColumnDirection, drawn.Geometry.SliceDirection), VoxelType.UInt8, drawn.Data);
        var shiftedFile = Path.Combine(_root, "shifted.nii.gz");
        NiftiWriter.WriteFile(shifted, shiftedFile);
        var refused = await CliResultAsync(harness, "labels", "import", "--case", c.CaseKey, shiftedFile);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("does not lie on the image grid", refused.Stderr, StringComparison.Ordinal);
        Assert.Equal(2, (await LabelsAsync(harness, c.CaseKey)).Count);

        // cases show lists both labels and marks the import as current.
        var shown = await CliAsync(harness, "cases", "show", c.CaseKey);
        Assert.Contains("model", shown, StringComparison.Ordinal);
        Assert.Contains("import", shown, StringComparison.Ordinal);
        using var shownJson = JsonDocument.Parse(await CliAsync(harness, "cases", "show", c.CaseKey, "--json"));
        Assert.Equal(["import"], shownJson.RootElement.GetProperty("labels").EnumerateArray().Where(l => l.GetProperty("isCurrent").GetBoolean())
            .Select(l => l.GetProperty("source").GetString()));
    }

    [Fact]
    public async Task An_empty_prediction_stores_no_seg_and_a_failing_or_off_grid_predictor_is_dead_lettered_with_its_reason()
    {
        await using var harness = await RecordsHarness.StartAsync(WorkerSettings());
        await ActiveModelAsync(harness);
        var series = new TestSeries(slices: 4, rows: 16, columns: 16);
        await UploadAsync(harness, PatternedFiles(series));
        var c = await CaseOfAsync(harness, series);
        var segsBefore = await harness.CountAsync("SELECT count(*) FROM labels");

        // Auto-inference is off: nothing was queued for the new case. Started by hand, an empty prediction is "no findings".
        Assert.Equal(0, await harness.CountAsync("SELECT count(*) FROM inferences"));
        await File.WriteAllTextAsync(ModeFile, "empty");
        using (var empty = JsonDocument.Parse(await CliAsync(harness, "inference", "start", "--workflow", "liver-ct", "--series", series.SeriesInstanceUid, "--wait", "--json")))
        {
            Assert.Equal(("succeeded", "no_findings", ""), (empty.RootElement.GetProperty("state").GetString(), empty.RootElement.GetProperty("outcome").GetString(),
                empty.RootElement.GetProperty("segSopInstanceUid").GetString()));
        }
        Assert.Equal(segsBefore, await harness.CountAsync("SELECT count(*) FROM labels"));

        // A failing predictor: each attempt fails with nnU-Net's error, then the job is a dead letter and the inference failed.
        await File.WriteAllTextAsync(ModeFile, "fail");
        var failed = await CliResultAsync(harness, "inference", "start", "--workflow", "liver-ct", "--case", c.CaseKey, "--wait", "--json");
        Assert.Equal(1, failed.ExitCode);
        Assert.Equal("", failed.Stderr); // --json: the record on stdout, no progress lines
        using (var json = JsonDocument.Parse(failed.Stdout))
        {
            Assert.Equal(("failed", 2), (json.RootElement.GetProperty("state").GetString(), json.RootElement.GetProperty("attempts").GetInt32()));
            Assert.Contains("Error(s) in loading state_dict", json.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
            Assert.Equal(1, await harness.CountAsync($"SELECT count(*) FROM dead_letters WHERE id = {json.RootElement.GetProperty("jobId").GetInt64()}"));
        }

        // A prediction off the image grid fails the same way, saying so.
        await File.WriteAllTextAsync(ModeFile, "off-grid");
        var offGrid = (await Inference(harness).StartInferenceAsync(new StartInferenceRequest { Workflow = "liver-ct", CaseKey = c.CaseKey })).Inference;
        await harness.WaitForCountAsync($"SELECT count(*) FROM inferences WHERE id = {offGrid.Id} AND state = 'failed'", 1, Patience, "the off-grid inference to fail");
        var ended = (await Inference(harness).GetInferenceAsync(new GetInferenceRequest { Id = offGrid.Id })).Inference;
        Assert.Contains("does not lie on the image grid", ended.Error, StringComparison.Ordinal);
        Assert.Equal(segsBefore, await harness.CountAsync("SELECT count(*) FROM labels"));

        // Requests that cannot be served are refused with the reason.
        var noCase = await Assert.ThrowsAsync<RpcException>(async () =>
            await Inference(harness).StartInferenceAsync(new StartInferenceRequest { Workflow = "liver-ct", CaseKey = "liverct_nothere" }));
        Assert.Equal(StatusCode.NotFound, noCase.StatusCode);
        var both = await Assert.ThrowsAsync<RpcException>(async () =>
            await Inference(harness).StartInferenceAsync(new StartInferenceRequest { Workflow = "liver-ct", CaseKey = c.CaseKey, SeriesInstanceUid = "1.2.3" }));
        Assert.Equal(StatusCode.InvalidArgument, both.StatusCode);
    }

    [Fact]
    public async Task Three_inferences_at_once_on_two_gpus_run_at_most_two_predictors_together_each_on_its_own_gpu()
    {
        var settings = WorkerSettings();
        // Long enough that predictions started together overlap.
        settings["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_PREDICT_SECONDS"] = "3";
        await using var harness = await RecordsHarness.StartAsync(settings);
        await ActiveModelAsync(harness);
        var series = Enumerable.Range(0, 3).Select(_ => new TestSeries(slices: 4, rows: 16, columns: 16)).ToList();
        var cases = new List<Case>();
        foreach (var s in series)
        {
            await UploadAsync(harness, PatternedFiles(s));
            cases.Add(await CaseOfAsync(harness, s));
        }

        var started = new List<long>();
        foreach (var c in cases)
        {
            started.Add((await Inference(harness).StartInferenceAsync(new StartInferenceRequest { Workflow = "liver-ct", CaseKey = c.CaseKey })).Inference.Id);
        }
        await harness.WaitForCountAsync($"SELECT count(*) FROM inferences WHERE state = 'succeeded' AND id IN ({string.Join(',', started)})", 3, Patience,
            "the three inferences");

        // Each predictor's run, from the stand-in's own records: when it started and ended, and the GPUs it saw.
        var ends = File.ReadAllLines(Ends).Select(l => JsonDocument.Parse(l).RootElement)
            .ToDictionary(e => e.GetProperty("pid").GetInt64(), e => e.GetProperty("ended").GetDouble());
        var predictors = File.ReadAllLines(Starts).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(i => i.GetProperty("argv")[0].GetString() == "nnUNetv2_predict")
            .Select(i => (Gpus: i.GetProperty("cuda_visible_devices").GetString()!, From: i.GetProperty("started").GetDouble(), To: ends[i.GetProperty("pid").GetInt64()]))
            .ToList();
        Assert.Equal(3, predictors.Count);
        Assert.All(predictors, p => Assert.Contains(p.Gpus, new[] { "0", "1" }));
        // The most predictors running at once is reached at some predictor's start: count what runs at each start.
        foreach (var start in predictors.Select(p => p.From))
        {
            var running = predictors.Where(p => p.From <= start && start < p.To).ToList();
            Assert.True(running.Count <= 2, $"{running.Count} predictors ran at once");
            Assert.Equal(running.Count, running.Select(p => p.Gpus).Distinct().Count());
        }
        Assert.Contains(predictors, a => predictors.Count(b => b.From <= a.From && a.From < b.To) == 2);
        // The records say the same: each on a GPU of its own, on this machine, a SEG stored for each case.
        Assert.Equal(3, await harness.CountAsync(
            $"SELECT count(*) FROM inferences WHERE gpus_given IN ('0', '1') AND host = '{Environment.MachineName}' AND id IN ({string.Join(',', started)})"));
        foreach (var c in cases)
        {
            var inference = (await Inference(harness).ListInferencesAsync(new ListInferencesRequest { CaseKey = c.CaseKey })).Inferences.Single();
            Assert.Equal((InferenceOutcome.SegStored, 1), (inference.Outcome, inference.Attempts));
        }
    }
}
