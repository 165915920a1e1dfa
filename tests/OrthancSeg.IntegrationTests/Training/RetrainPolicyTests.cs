using System.Globalization;
using System.Text.Json;
using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.IntegrationTests.Records;
using OrthancSeg.Tests.Support;
using static OrthancSeg.IntegrationTests.Datasets.SnapshotHarness;

namespace OrthancSeg.IntegrationTests.Training;

/// <summary>
/// The retrain policy end to end on the local backend: labels accepted from SEGs stored into Orthanc fire it, it exports and trains with
/// the workflow's defaults (set through the CLI), and each new model is compared with the active one, activated only when not worse.
/// The nnU-Net stand-ins' validation is steered through a file, so one run's model is worse than the other two.
/// </summary>
public sealed class RetrainPolicyTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(4);
    private readonly string _root = Directory.CreateTempSubdirectory("orthancseg-retrain-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string MissedVoxelsFile => Path.Combine(_root, "missed-voxels");

    private Dictionary<string, string> WorkerSettings()
    {
        var raw = Path.Combine(_root, "nnUNet_raw");
        Directory.CreateDirectory(raw);
        return Settings(raw, new Dictionary<string, string>
        {
            ["OrthancSeg:Training:NnUnet:BinDirectory"] = NnUnetStandIn.BinDirectory,
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_EPOCHS"] = "3",
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_STEP_SECONDS"] = "0.1",
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_MISSED_VOXELS_FILE"] = MissedVoxelsFile,
            ["OrthancSeg:Training:Local:Gpus:0"] = "0",
            ["OrthancSeg:Training:Local:Gpus:1"] = "1",
            ["OrthancSeg:Training:Local:Cpus"] = "2",
            ["OrthancSeg:Training:Local:MemoryMiB"] = "4000",
            ["OrthancSeg:Training:RetrainCheckInterval"] = "00:00:00.500",
        });
    }

    private static Task<string> CliAsync(RecordsHarness harness, params string[] arguments) => TrainingRunTests.CliAsync(harness, arguments);

    /// <summary><paramref name="count"/> CT series in Orthanc, recorded as cases of liver-ct.</summary>
    private static async Task<List<TestSeries>> SeriesAsync(RecordsHarness harness, int count)
    {
        var series = Enumerable.Range(0, count).Select(_ => new TestSeries(slices: 4, rows: 16, columns: 16)).ToList();
        foreach (var s in series)
        {
            await UploadAsync(harness, PatternedFiles(s));
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM cases", count, Datasets.SnapshotHarness.Patience, $"{count} cases");
        return series;
    }

    /// <summary>A SEG per series: the liver on all four slices (four voxels, so the stand-in's validation can miss some), the lesion on one.</summary>
    private static async Task UploadSegsAsync(RecordsHarness harness, IEnumerable<TestSeries> series)
    {
        foreach (var s in series)
        {
            await UploadAsync(harness, [s.Seg([new(1, "Liver"), new(2, "lesion")], [new(0, 1), new(1, 1), new(2, 1), new(3, 1), new(2, 2)])]);
        }
    }

    /// <summary>Waits until the policy's run of trigger <paramref name="trigger"/> registered its model; returns the model.</summary>
    private static async Task<Model> PolicyModelAsync(RecordsHarness harness, int trigger)
    {
        await harness.WaitForCountAsync("SELECT count(*) FROM model_comparisons", trigger, Patience, $"the model of retrain trigger {trigger}");
        var models = (await TrainingRunTests.Models(harness).ListModelsAsync(new ListModelsRequest { Workflow = "liver-ct" })).Models;
        Assert.Equal(trigger, models.Count);
        return models[0];
    }

    [Fact]
    public async Task The_policy_fires_after_N_new_labels_trains_with_the_workflow_defaults_and_activates_only_a_model_that_is_not_worse()
    {
        await File.WriteAllTextAsync(MissedVoxelsFile, "1");
        await using var harness = await RecordsHarness.StartAsync(WorkerSettings());
        await CreateWorkflowAsync(harness);
        var series = await SeriesAsync(harness, 6);
        await UploadSegsAsync(harness, series);
        await harness.WaitForCountAsync("SELECT count(*) FROM labels WHERE verdict = 'accepted'", 6, Datasets.SnapshotHarness.Patience, "6 accepted labels");

        // Defaults and policy through the CLI; the request the policy makes sets nothing, so every run trains with these.
        using var shown = JsonDocument.Parse(await CliAsync(harness, "workflows", "update", "liver-ct", "--folds", "all", "--gpus", "1", "--cpus", "1",
            "--memory", "1000M", "--time", "00:10:00", "--backend", "local", "--retrain", "on", "--retrain-after", "3", "--min-dice-improvement", "0", "--json"));
        Assert.Equal(3, shown.RootElement.GetProperty("retrainPolicy").GetProperty("minNewLabels").GetInt32());
        Assert.Equal("6", shown.RootElement.GetProperty("retrainPolicy").GetProperty("newLabels").GetString());
        Assert.Equal(["all"], shown.RootElement.GetProperty("trainingDefaults").GetProperty("folds").EnumerateArray().Select(f => f.GetString()));

        // 1. Six new labels, no model yet: the policy exports, trains with the defaults, and the model becomes active.
        var first = await PolicyModelAsync(harness, 1);
        Assert.True(first.Active, first.Comparison?.Reason ?? "no comparison");
        Assert.True(first.Comparison!.Activated);
        Assert.Equal("no model was active", first.Comparison.Reason);
        var firstRun = (await TrainingRunTests.Training(harness).GetTrainingRunAsync(new GetTrainingRunRequest { Id = first.RunId })).Run;
        Assert.Equal("retrain-policy", firstRun.Trigger);
        Assert.Equal(["all"], firstRun.Folds);
        Assert.Equal((1, 1, 1000L, 600L), (firstRun.Resources.Gpus, firstRun.Resources.Cpus, firstRun.Resources.MemoryMib, firstRun.Resources.TimeLimitSeconds));
        Assert.Equal(first.Id, firstRun.Comparison.ModelId);

        // Its epochs, parsed from nnU-Net's output, come in the watch stream with the log lines, and the last one is in the run.
        var epochs = new List<TrainingEpoch>();
        var lines = new List<TrainingLogLine>();
        using (var watch = TrainingRunTests.Training(harness).WatchTrainingRun(new WatchTrainingRunRequest { Id = first.RunId, Epochs = true, LogLines = true }))
        {
            await foreach (var update in watch.ResponseStream.ReadAllAsync())
            {
                epochs.AddRange(update.Epochs);
                lines.AddRange(update.LogLines);
            }
        }
        Assert.Equal([0, 1, 2], epochs.Select(e => e.Epoch));
        Assert.All(epochs, e => Assert.Equal("all", e.Fold));
        Assert.Equal([-0.1, -0.3, -0.5], epochs.Select(e => Math.Round(e.TrainLoss, 4)));
        Assert.Equal([-0.05, -0.25, -0.45], epochs.Select(e => Math.Round(e.ValLoss, 4)));
        Assert.All(epochs, e => Assert.Equal(2, e.PseudoDice.Count));
        Assert.Equal([0.71, 0.72], epochs[2].PseudoDice);
        Assert.All(epochs, e => Assert.Equal(0.1, e.EpochSeconds));
        Assert.Contains(lines, l => l.Step == "all" && l.Text.EndsWith("Epoch 1", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Step == "preprocess");
        Assert.Equal(2, firstRun.Steps.Single(s => s.Kind == "fold").LatestEpoch.Epoch);
        Assert.Contains("fold all: epoch 2, train_loss -0.5, val_loss -0.45, pseudo Dice [0.71, 0.72]",
            await CliAsync(harness, "training", "watch", $"{first.RunId}"), StringComparison.Ordinal);

        // 2. Two new labels are not enough; a third fires it again. This model validates worse: it stays inactive, and the comparison says why.
        await File.WriteAllTextAsync(MissedVoxelsFile, "3");
        await UploadSegsAsync(harness, series.Take(2));
        await harness.WaitForCountAsync("SELECT count(*) FROM labels WHERE verdict = 'accepted'", 8, Datasets.SnapshotHarness.Patience, "8 accepted labels");
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal(1, await harness.CountAsync("SELECT count(*) FROM retrain_triggers"));
        await UploadSegsAsync(harness, series.Skip(2).Take(1));
        var worse = await PolicyModelAsync(harness, 2);
        Assert.True(worse.MeanDice < first.MeanDice, $"{worse.MeanDice} < {first.MeanDice}");
        Assert.False(worse.Active);
        Assert.False(worse.Comparison.Activated);
        Assert.Equal((first.Id, first.MeanDice, worse.MeanDice, 0.0), (worse.Comparison.ActiveModelId, worse.Comparison.ActiveDice, worse.Comparison.NewDice,
            worse.Comparison.MinDiceImprovement));
        Assert.Contains("below the required +0", worse.Comparison.Reason, StringComparison.Ordinal);
        using (var cli = JsonDocument.Parse(await CliAsync(harness, "models", "show", $"{worse.Id}", "--json")))
        {
            var comparison = cli.RootElement.GetProperty("comparison");
            Assert.False(comparison.GetProperty("activated").GetBoolean());
            Assert.Equal(first.MeanDice, comparison.GetProperty("activeDice").GetDouble(), 9);
            Assert.Equal(worse.MeanDice, comparison.GetProperty("newDice").GetDouble(), 9);
        }
        Assert.Equal(first.Id, await harness.CountAsync("SELECT model FROM model_overview WHERE active AND workflow = 'liver-ct'"));

        // 3. Three more labels, and a model as good as the active one: not worse, so it becomes the active model.
        await File.WriteAllTextAsync(MissedVoxelsFile, "1");
        await UploadSegsAsync(harness, series.Skip(3).Take(3));
        var same = await PolicyModelAsync(harness, 3);
        Assert.Equal(first.MeanDice, same.MeanDice, 9);
        Assert.True(same.Active, same.Comparison.Reason);
        Assert.Equal(first.Id, same.Comparison.ActiveModelId);
        Assert.Contains("at least the required +0", same.Comparison.Reason, StringComparison.Ordinal);
        Assert.False((await TrainingRunTests.Models(harness).GetModelAsync(new GetModelRequest { Id = first.Id })).Model.Active);
        Assert.Contains("activated: mean Dice", await CliAsync(harness, "training", "show", $"{same.RunId}"), StringComparison.Ordinal);

        // One run per trigger, each recorded with its comparison.
        Assert.Equal(3, await harness.CountAsync("SELECT count(*) FROM retrain_overview WHERE state = 'succeeded' AND run IS NOT NULL AND model IS NOT NULL"));
        Assert.Equal(3, await harness.CountAsync("SELECT count(*) FROM training_runs"));
    }

    [Fact]
    public async Task Two_workers_checking_the_same_policy_start_one_export_and_one_run_per_trigger_and_a_killed_worker_does_not_add_one()
    {
        await File.WriteAllTextAsync(MissedVoxelsFile, "1");
        await using var harness = await RecordsHarness.StartAsync(WorkerSettings());
        var (replica, _) = await harness.StartReplicaAsync();
        await CreateWorkflowAsync(harness);
        var series = await SeriesAsync(harness, 5);
        await UploadSegsAsync(harness, series);
        await harness.WaitForCountAsync("SELECT count(*) FROM labels WHERE verdict = 'accepted'", 5, Datasets.SnapshotHarness.Patience, "5 accepted labels");

        // Both workers run checks every half second from now on; the primary is killed while the policy's run trains, and restarted.
        await CliAsync(harness, "workflows", "update", "liver-ct", "--folds", "all", "--cpus", "1", "--memory", "500M", "--retrain", "on", "--retrain-after", "1");
        await harness.WaitForCountAsync("SELECT count(*) FROM retrain_triggers WHERE state = 'training'", 1, Patience, "the policy's run");
        await harness.KillWorkerAsync();
        await harness.StartWorkerAsync();
        await PolicyModelAsync(harness, 1);
        // Further checks by both workers find no new label: nothing more starts.
        await Task.Delay(TimeSpan.FromSeconds(3));

        Assert.Equal(1, await harness.CountAsync("SELECT count(*) FROM retrain_triggers"));
        Assert.Equal(1, await harness.CountAsync("SELECT count(*) FROM training_runs"));
        Assert.Equal(1, await harness.CountAsync("SELECT count(*) FROM snapshots"));
        Assert.True(await harness.CountAsync("SELECT count(DISTINCT lease_owner) FROM jobs WHERE kind = 'retrain-check'") >= 2,
            "the checks ran on one worker only");
        Assert.False(replica.HasExited);
    }

    [Fact]
    public async Task A_request_overrides_the_workflow_defaults_field_by_field_and_bad_defaults_are_refused()
    {
        await using var harness = await RecordsHarness.StartAsync(WorkerSettings());
        await CreateWorkflowAsync(harness);

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await harness.Workflows.UpdateWorkflowAsync(new UpdateWorkflowRequest
        {
            Workflow = new Workflow { Name = "liver-ct", TrainingDefaults = new TrainingDefaults { Configuration = "4d", Folds = { "9" } } },
            UpdateMask = new() { Paths = { "training_defaults" } },
        }));
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Contains("'9' is out of range", refused.Status.Detail, StringComparison.Ordinal);

        await CliAsync(harness, "workflows", "update", "liver-ct", "--folds", "all", "--gpus", "0", "--time", "01:00:00");
        await CliAsync(harness, "workflows", "update", "liver-ct", "--cpus", "1");
        var workflow = (await harness.Workflows.GetWorkflowAsync(new GetWorkflowRequest { Name = "liver-ct" })).Workflow;
        Assert.Equal(["all"], workflow.TrainingDefaults.Folds);
        Assert.Equal((0, 1, 3600L), (workflow.TrainingDefaults.Resources.Gpus, workflow.TrainingDefaults.Resources.Cpus,
            workflow.TrainingDefaults.Resources.TimeLimitSeconds));
        Assert.True(workflow.TrainingDefaults.Resources.HasGpus);
        Assert.False(workflow.RetrainPolicy.Enabled);
        Assert.Contains("folds all, GPUs 0, CPUs 1, time 01:00:00", await CliAsync(harness, "workflows", "show", "liver-ct"), StringComparison.Ordinal);

        // A run needs a snapshot; the request's own folds and the workflow's other defaults meet in the run.
        var series = await SeriesAsync(harness, 5);
        await UploadSegsAsync(harness, series);
        await harness.WaitForCountAsync("SELECT count(*) FROM cases WHERE status = 'labeled'", 5, Datasets.SnapshotHarness.Patience, "5 labelled cases");
        var snapshot = await WaitForFinishAsync(harness, (await harness.Snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot.Id);
        Assert.Equal(SnapshotState.Succeeded, snapshot.State);

        using var started = JsonDocument.Parse(await CliAsync(harness, "training", "start", "--workflow", "liver-ct", "--folds", "0,1", "--memory", "500M", "--json"));
        var run = started.RootElement;
        Assert.Equal(["0", "1"], run.GetProperty("folds").EnumerateArray().Select(f => f.GetString()));
        Assert.Equal((0, 1, 500L, 3600L, "manual"), (run.GetProperty("gpus").GetInt32(), run.GetProperty("cpus").GetInt32(),
            run.GetProperty("memoryMib").GetInt64(), run.GetProperty("timeLimitSeconds").GetInt64(), run.GetProperty("trigger").GetString()));
        await TrainingRunTests.Training(harness).CancelTrainingRunAsync(new CancelTrainingRunRequest { Id = run.GetProperty("id").GetInt64() });
    }
}
