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
/// Training runs end to end on the local backend: a real snapshot exported by the worker from Orthanc, StartTraining over gRPC, the
/// preprocessing and fold jobs run by the job engine through the launcher against the nnU-Net stand-ins, two configured GPUs.
/// </summary>
public sealed class TrainingRunTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(4);
    private readonly string _root = Directory.CreateTempSubdirectory("orthancseg-training-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Raw => Path.Combine(_root, "nnUNet_raw");

    private string RecordFile => Path.Combine(_root, "invocations.jsonl");

    private string ModelFolder => Path.Combine(_root, "nnUNet_results", "Dataset007_LiverCT", "nnUNetTrainer__nnUNetPlans__3d_fullres");

    private Dictionary<string, string> WorkerSettings(int epochs, double stepSeconds, string? failFold = null)
    {
        Directory.CreateDirectory(Raw);
        var settings = Settings(Raw, new Dictionary<string, string>
        {
            ["OrthancSeg:Training:NnUnet:BinDirectory"] = NnUnetStandIn.BinDirectory,
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_EPOCHS"] = epochs.ToString(CultureInfo.InvariantCulture),
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_STEP_SECONDS"] = stepSeconds.ToString(CultureInfo.InvariantCulture),
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_RECORD"] = RecordFile,
            ["OrthancSeg:Training:Local:Gpus:0"] = "0",
            ["OrthancSeg:Training:Local:Gpus:1"] = "1",
            ["OrthancSeg:Training:Local:Cpus"] = "4",
            ["OrthancSeg:Training:Local:MemoryMiB"] = "8000",
            ["OrthancSeg:Training:Local:KillGracePeriod"] = "00:00:05",
        });
        if (failFold is not null)
        {
            settings["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_FAIL_FOLD"] = failFold;
        }
        return settings;
    }

    internal static TrainingService.TrainingServiceClient Training(RecordsHarness harness) =>
        new(RecordsHarness.WithToken(harness.Channel, File.ReadAllText(harness.AdminTokenFile).Trim()));

    internal static ModelService.ModelServiceClient Models(RecordsHarness harness) =>
        new(RecordsHarness.WithToken(harness.Channel, File.ReadAllText(harness.AdminTokenFile).Trim()));

    /// <summary>Six labelled CT series in Orthanc, exported by the worker to a snapshot of workflow liver-ct.</summary>
    internal static async Task<Snapshot> SnapshotAsync(RecordsHarness harness)
    {
        await CreateWorkflowAsync(harness);
        var series = Enumerable.Range(0, 6).Select(_ => new TestSeries(slices: 4, rows: 16, columns: 16)).ToList();
        foreach (var s in series)
        {
            await UploadAsync(harness, PatternedFiles(s));
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM cases", 6, Datasets.SnapshotHarness.Patience, "6 cases");
        foreach (var s in series)
        {
            await UploadAsync(harness, [s.Seg([new(1, "Liver"), new(2, "lesion")], [new(1, 1), new(2, 2)])]);
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM cases WHERE status = 'labeled'", 6, Datasets.SnapshotHarness.Patience, "6 labelled cases");
        var queued = await harness.Snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" });
        var snapshot = await WaitForFinishAsync(harness, queued.Snapshot.Id);
        Assert.True(snapshot.State == SnapshotState.Succeeded, $"snapshot {snapshot.State}: {snapshot.Error}");
        return snapshot;
    }

    private static StartTrainingRequest Request(long snapshotId, params string[] folds) => new()
    {
        Workflow = "liver-ct",
        SnapshotId = snapshotId,
        Folds = { folds },
        Backend = TrainingBackend.Local,
        Resources = new TrainingResources { Gpus = 1, Cpus = 1, MemoryMib = 1000, TimeLimitSeconds = 600 },
    };

    /// <summary>Follows the run with WatchTrainingRun until it and its steps have ended; returns every update seen.</summary>
    internal static async Task<List<TrainingRun>> WatchAsync(RecordsHarness harness, long runId)
    {
        using var deadline = new CancellationTokenSource(Patience);
        var seen = new List<TrainingRun>();
        try
        {
            using var watch = Training(harness).WatchTrainingRun(new WatchTrainingRunRequest { Id = runId }, cancellationToken: deadline.Token);
            await foreach (var update in watch.ResponseStream.ReadAllAsync(deadline.Token))
            {
                seen.Add(update.Run);
            }
        }
        catch (Exception e) when (deadline.IsCancellationRequested && e is OperationCanceledException or RpcException)
        {
            throw new TimeoutException($"run {runId} did not end within {Patience} (last: {seen.LastOrDefault()})\n{harness.WorkerLog()}", e);
        }
        return seen;
    }

    internal static async Task<string> CliAsync(RecordsHarness harness, params string[] arguments)
    {
        var result = await CliProcess.RunAsync([.. arguments, "--url", harness.WorkerAddress, "--token-file", harness.AdminTokenFile]);
        Assert.True(result.ExitCode == 0, $"orthancseg {string.Join(' ', arguments)} exited {result.ExitCode}: {result.Stderr}\n{result.Stdout}");
        return result.Stdout;
    }

    private List<JsonElement> Invocations(string program) =>
        File.Exists(RecordFile)
            ? [.. File.ReadAllLines(RecordFile).Select(l => JsonDocument.Parse(l).RootElement.Clone()).Where(i => i.GetProperty("argv")[0].GetString() == program)]
            : [];

    [Fact]
    public async Task Five_folds_on_two_gpus_train_two_at_a_time_on_different_gpus_and_register_a_model_with_the_validation_dice()
    {
        await using var harness = await RecordsHarness.StartAsync(WorkerSettings(epochs: 2, stepSeconds: 0.3));
        var snapshot = await SnapshotAsync(harness);

        var cli = await CliAsync(harness, "training", "start", "--workflow", "liver-ct", "--snapshot", $"{snapshot.Id}", "--backend", "local", "--gpus", "1",
            "--cpus", "1", "--memory", "1000M", "--time", "00:10:00", "--json");
        using var printed = JsonDocument.Parse(cli);
        var started = (await Training(harness).GetTrainingRunAsync(new GetTrainingRunRequest { Id = printed.RootElement.GetProperty("id").GetInt64() })).Run;
        Assert.Equal(["0", "1", "2", "3", "4"], started.Folds);
        Assert.Equal((1, 1, 1000L, 600L), (started.Resources.Gpus, started.Resources.Cpus, started.Resources.MemoryMib, started.Resources.TimeLimitSeconds));
        var seen = await WatchAsync(harness, started.Id);
        var run = seen[^1];

        Assert.True(run.State == TrainingState.Succeeded, $"run ended {run.State}: {run.Error}\n{harness.WorkerLog()}");
        Assert.Contains(seen, r => r.State == TrainingState.Running);
        Assert.Equal(["preprocess", "fold", "fold", "fold", "fold", "fold"], run.Steps.Select(s => s.Kind));
        Assert.All(run.Steps, s => Assert.True(s.State == TrainingState.Succeeded && s.ExitCode == 0 && s.JobId > 0 && s.BackendJobId.Length > 0,
            $"step {s.Kind} {s.Fold}: {s.State} {s.Error}"));
        Assert.Equal("", run.Steps[0].Gpus);
        Assert.All(run.Steps.Skip(1), s => Assert.Contains(s.Gpus, new[] { "0", "1" }));

        // The splits were ours: written before training, every case validated in exactly one fold.
        var splits = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(_root, "nnUNet_preprocessed", "Dataset007_LiverCT", "splits_final.json")));
        Assert.Equal(6, splits.RootElement.EnumerateArray().SelectMany(f => f.GetProperty("val").EnumerateArray()).Select(c => c.GetString()).Distinct().Count());

        // Each fold ran from its recorded start until its last file was written: the most running at once, counted at every start, is two,
        // on different GPUs, and two did run at once.
        var folds = Invocations("nnUNetv2_train").Select(i => (
            Fold: i.GetProperty("argv")[3].GetString()!,
            Gpu: i.GetProperty("cuda_visible_devices").GetString()!,
            From: DateTimeOffset.FromUnixTimeMilliseconds((long)(i.GetProperty("started").GetDouble() * 1000)),
            To: new DateTimeOffset(Directory.GetFiles(Path.Combine(ModelFolder, "fold_" + i.GetProperty("argv")[3].GetString()), "*", SearchOption.AllDirectories)
                .Max(File.GetLastWriteTimeUtc), TimeSpan.Zero))).ToList();
        Assert.Equal(["0", "1", "2", "3", "4"], folds.Select(f => f.Fold).Order());
        foreach (var fold in folds)
        {
            var running = folds.Where(b => b.From <= fold.From && fold.From < b.To).ToList();
            Assert.True(running.Count <= 2, $"{running.Count} folds ran at once");
            Assert.Equal(running.Count, running.Select(b => b.Gpu).Distinct().Count());
        }
        Assert.Contains(folds, a => folds.Count(b => b.From <= a.From && a.From < b.To) == 2);

        // The model: where nnU-Net wrote it, with the folds' validation Dice averaged.
        Assert.True(run.ModelId > 0);
        var model = (await Models(harness).GetModelAsync(new GetModelRequest { Id = run.ModelId })).Model;
        Assert.Equal((ModelFolder, started.Id, snapshot.Id, "3d_fullres"), (model.Location, model.RunId, model.SnapshotId, model.Configuration));
        var summaries = Enumerable.Range(0, 5)
            .Select(f => JsonDocument.Parse(File.ReadAllText(Path.Combine(ModelFolder, $"fold_{f}", "validation", "summary.json"))).RootElement).ToList();
        Assert.Equal(summaries.Average(s => s.GetProperty("foreground_mean").GetProperty("Dice").GetDouble()), model.MeanDice, 9);
        Assert.Equal([1, 2], model.LabelDice.Select(l => l.Value));
        Assert.Equal(["liver", "tumor"], model.LabelDice.Select(l => l.Name));
        Assert.Equal(summaries.Average(s => s.GetProperty("mean").GetProperty("2").GetProperty("Dice").GetDouble()), model.LabelDice[1].Dice, 9);
        Assert.False(model.Active);

        // nnU-Net's epoch lines are in the fold's log, and the CLI shows them.
        Assert.Contains("Epoch 1", await CliAsync(harness, "training", "logs", $"{started.Id}", "--step", "3"), StringComparison.Ordinal);
        using (var logs = JsonDocument.Parse(await CliAsync(harness, "training", "logs", $"{started.Id}", "--step", "3", "--json")))
        {
            Assert.Contains("Epoch 1", logs.RootElement.GetProperty("text").GetString(), StringComparison.Ordinal);
            Assert.Equal("succeeded", logs.RootElement.GetProperty("state").GetString());
            Assert.True(logs.RootElement.GetProperty("nextOffset").GetInt64() > 0);
        }
        await CliAsync(harness, "models", "activate", $"{model.Id}");
        using var listed = JsonDocument.Parse(await CliAsync(harness, "models", "list", "--workflow", "liver-ct", "--json"));
        var row = Assert.Single(listed.RootElement.EnumerateArray());
        Assert.True(row.GetProperty("active").GetBoolean());
        Assert.Equal(model.MeanDice, row.GetProperty("meanDice").GetDouble(), 9);
        Assert.Equal(1, await harness.CountAsync("SELECT count(*) FROM model_overview WHERE active AND workflow = 'liver-ct'"));
    }

    [Fact]
    public async Task A_failing_fold_fails_its_run_with_the_log_tail_a_time_limit_stops_a_fold_and_cancel_stops_the_process_tree()
    {
        await using var harness = await RecordsHarness.StartAsync(WorkerSettings(epochs: 40, stepSeconds: 0.2, failFold: "1"));
        var snapshot = await SnapshotAsync(harness);
        var training = Training(harness);

        // Requests that can never run are refused at once, with the reason.
        var tooBig = Request(snapshot.Id, "0");
        tooBig.Resources.Gpus = 3;
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await training.StartTrainingAsync(tooBig));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("3 GPU(s) asked but this machine has 2", refused.Status.Detail, StringComparison.Ordinal);
        var badFold = await Assert.ThrowsAsync<RpcException>(async () => await training.StartTrainingAsync(Request(snapshot.Id, "5")));
        Assert.Equal(StatusCode.InvalidArgument, badFold.StatusCode);

        // Fold 1 runs out of GPU memory in its second epoch: the run fails, saying which fold and how it ended.
        var failing = (await training.StartTrainingAsync(Request(snapshot.Id, "1"))).Run;
        var failed = (await WatchAsync(harness, failing.Id))[^1];
        Assert.Equal(TrainingState.Failed, failed.State);
        Assert.StartsWith("fold 1 failed: exited with code 1", failed.Error, StringComparison.Ordinal);
        Assert.Contains("torch.OutOfMemoryError: CUDA out of memory", failed.Error, StringComparison.Ordinal);
        Assert.Equal((TrainingState.Failed, 1), (failed.Steps[1].State, failed.Steps[1].ExitCode));
        Assert.Equal(0, failed.ModelId);

        // A fold that overruns its time limit is stopped.
        var overrunning = Request(snapshot.Id, "0");
        overrunning.Resources.TimeLimitSeconds = 3;
        var limited = (await WatchAsync(harness, (await training.StartTrainingAsync(overrunning)).Run.Id))[^1];
        Assert.Equal(TrainingState.Failed, limited.State);
        Assert.Contains("stopped at its time limit of 00:00:03", limited.Error, StringComparison.Ordinal);

        // Cancel while folds 0 and 2 train: both process trees end, the run and its steps are cancelled.
        var running = (await training.StartTrainingAsync(Request(snapshot.Id, "0", "2"))).Run;
        var deadline = DateTimeOffset.UtcNow + Patience;
        while (Invocations("nnUNetv2_train").Count(i => i.GetProperty("argv")[3].GetString() is "0" or "2") < 3)
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, $"the folds of run {running.Id} did not start\n{harness.WorkerLog()}");
            await Task.Delay(100);
        }
        var pids = Invocations("nnUNetv2_train").TakeLast(2).Select(i => i.GetProperty("pid").GetInt32()).ToList();
        Assert.All(pids, pid => Assert.True(Directory.Exists($"/proc/{pid}"), $"fold process {pid} is not running"));

        var cancelled = (await training.CancelTrainingRunAsync(new CancelTrainingRunRequest { Id = running.Id })).Run;

        Assert.Equal(TrainingState.Cancelled, cancelled.State);
        Assert.All(cancelled.Steps.Skip(1), s => Assert.Equal(TrainingState.Cancelled, s.State));
        Assert.All(pids, pid => Assert.False(Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal),
            $"fold process {pid} still runs after the cancel"));
        Assert.False(File.Exists(Path.Combine(ModelFolder, "fold_0", "checkpoint_final.pth")));
        var again = await Assert.ThrowsAsync<RpcException>(async () => await training.CancelTrainingRunAsync(new CancelTrainingRunRequest { Id = running.Id }));
        Assert.Equal(StatusCode.FailedPrecondition, again.StatusCode);

        // Cancelling one fold's job (jobs cancel ID) cancels its run, and the run's other fold stops too.
        var single = (await training.StartTrainingAsync(Request(snapshot.Id, "0", "2"))).Run;
        while (Invocations("nnUNetv2_train").Count < 6)
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, $"the folds of run {single.Id} did not start\n{harness.WorkerLog()}");
            await Task.Delay(100);
        }
        var both = Invocations("nnUNetv2_train").TakeLast(2).Select(i => i.GetProperty("pid").GetInt32()).ToList();
        var foldJob = (await training.GetTrainingRunAsync(new GetTrainingRunRequest { Id = single.Id })).Run.Steps[1].JobId;
        await harness.Jobs.CancelJobAsync(new CancelJobRequest { Id = foldJob });
        var ended = (await WatchAsync(harness, single.Id))[^1];
        Assert.Equal(TrainingState.Cancelled, ended.State);
        Assert.All(ended.Steps.Skip(1), s => Assert.Equal(TrainingState.Cancelled, s.State));
        Assert.All(both, pid => Assert.False(Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal),
            $"fold process {pid} still runs after its run was cancelled"));
    }

    [Fact]
    public async Task A_fold_killed_with_its_workers_process_tree_trains_again_in_a_new_folder_and_the_run_succeeds()
    {
        await using var harness = await RecordsHarness.StartAsync(WorkerSettings(epochs: 15, stepSeconds: 0.3));
        var snapshot = await SnapshotAsync(harness);
        var run = (await Training(harness).StartTrainingAsync(Request(snapshot.Id, "0"))).Run;
        var deadline = DateTimeOffset.UtcNow + Patience;
        while (Invocations("nnUNetv2_train").Count == 0)
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, $"nnUNetv2_train of run {run.Id} did not start\n{harness.WorkerLog()}");
            await Task.Delay(100);
        }
        var first = (await Training(harness).GetTrainingRunAsync(new GetTrainingRunRequest { Id = run.Id })).Run.Steps[1];

        // The worker and everything it started die together (a container or a cgroup stopped whole): the fold leaves no exit file.
        await harness.KillWorkerAsync();
        await harness.StartWorkerAsync();
        var ended = (await WatchAsync(harness, run.Id))[^1];

        Assert.True(ended.State == TrainingState.Succeeded, $"run ended {ended.State}: {ended.Error}\n{harness.WorkerLog()}");
        Assert.Equal(2, Invocations("nnUNetv2_train").Count);
        Assert.NotEqual(first.LogPath, ended.Steps[1].LogPath);
        Assert.Equal(2, (await harness.Jobs.GetJobAsync(new GetJobRequest { Id = ended.Steps[1].JobId })).Job.Attempts);
    }

    [Fact]
    public async Task A_worker_killed_while_a_fold_trains_reattaches_to_its_process_instead_of_starting_it_again()
    {
        await using var harness = await RecordsHarness.StartAsync(WorkerSettings(epochs: 15, stepSeconds: 0.3));
        var snapshot = await SnapshotAsync(harness);
        var run = (await Training(harness).StartTrainingAsync(Request(snapshot.Id, "0"))).Run;
        var deadline = DateTimeOffset.UtcNow + Patience;
        TrainingStep fold;
        while ((fold = (await Training(harness).GetTrainingRunAsync(new GetTrainingRunRequest { Id = run.Id })).Run.Steps[1]).State != TrainingState.Running)
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, $"fold 0 of run {run.Id} did not start\n{harness.WorkerLog()}");
            await Task.Delay(100);
        }

        while (Invocations("nnUNetv2_train").Count == 0)
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, $"nnUNetv2_train of run {run.Id} did not start\n{harness.WorkerLog()}");
            await Task.Delay(100);
        }
        var pid = Invocations("nnUNetv2_train").Single().GetProperty("pid").GetInt32();

        // SIGKILL to the worker alone, as a crash or an OOM kill would: the fold runs in a session of its own and carries on.
        await ProcessRunner.RunAsync("kill", ["-KILL", harness.Worker.ProcessId.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10));
        await harness.StopWorkerAsync();
        Assert.True(Directory.Exists($"/proc/{pid}"), "the fold died with its worker");
        await harness.StartWorkerAsync();
        // Followed from its start until the fold ends (which, under load, may come before the follower starts), its log comes out
        // whole: every epoch line once.
        var follow = CliAsync(harness, "training", "logs", $"{run.Id}", "--step", "0", "--follow", "--lines", "10000");
        var ended = (await WatchAsync(harness, run.Id))[^1];
        var followed = await follow.WaitAsync(TimeSpan.FromMinutes(1));
        var epochs = System.Text.RegularExpressions.Regex.Matches(followed, @": Epoch (\d+)\n")
            .Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(Enumerable.Range(0, 15), epochs);
        Assert.Contains("Mean Validation Dice", followed, StringComparison.Ordinal);

        Assert.True(ended.State == TrainingState.Succeeded, $"run ended {ended.State}: {ended.Error}\n{harness.WorkerLog()}");
        Assert.Single(Invocations("nnUNetv2_train"));
        Assert.Equal((fold.BackendJobId, fold.Gpus, fold.LogPath), (ended.Steps[1].BackendJobId, ended.Steps[1].Gpus, ended.Steps[1].LogPath));
        Assert.Equal(2, (await harness.Jobs.GetJobAsync(new GetJobRequest { Id = ended.Steps[1].JobId })).Job.Attempts);
        Assert.True(ended.ModelId > 0);
    }
}
