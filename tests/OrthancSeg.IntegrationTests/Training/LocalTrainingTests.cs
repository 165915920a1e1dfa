extern alias WorkerHost;

using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using WorkerHost::OrthancSeg.Worker.Training;
using WorkerHost::OrthancSeg.Worker.Training.Local;

namespace OrthancSeg.IntegrationTests.Training;

/// <summary>
/// The local backend's parts together, as a training handler will use them: the command builder's nnU-Net command
/// lines, run by the launcher on GPUs the ledger admits, against the nnU-Net stand-ins.
/// </summary>
public sealed class LocalTrainingTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("orthancseg-local-").FullName;
    private NnUnetStandIn _nnunet = null!;

    public async Task InitializeAsync() => _nnunet = await NnUnetStandIn.CreateAsync(_directory);

    public Task DisposeAsync()
    {
        Directory.Delete(_directory, recursive: true);
        return Task.CompletedTask;
    }

    private static LocalProcessLauncher Launcher() =>
        new(Options.Create(new LocalOptions { KillGracePeriod = TimeSpan.FromSeconds(5) }), NullLogger<LocalProcessLauncher>.Instance);

    private async Task<LocalExit> RunAsync(NnUnetCommand command, LocalAllocation allocation, string name)
    {
        var run = Path.Combine(_directory, "runs", name);
        var process = await Launcher().StartAsync(new LocalLaunchRequest
        {
            Command = command.Program,
            Arguments = command.Arguments,
            Environment = command.Environment,
            WorkingDirectory = _directory,
            RunDirectory = run,
            LogPath = Path.Combine(run, "log.txt"),
            Allocation = allocation,
            TimeLimit = TimeSpan.FromMinutes(5),
        }, CancellationToken.None);
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        return await process.WaitForExitAsync(deadline.Token);
    }

    private async Task PreprocessAsync(NnUnetCommands commands)
    {
        var exit = await RunAsync(commands.PlanAndPreprocess(NnUnetStandIn.Model, _nnunet.Paths, cpus: 1), new LocalAllocation("preprocess", [], 1, 100), "preprocess");
        Assert.True(exit.Outcome == LocalOutcome.Succeeded, File.ReadAllText(Path.Combine(_directory, "runs", "preprocess", "log.txt")));
    }

    [Fact]
    public async Task Five_folds_on_two_gpus_run_two_at_a_time_on_different_gpus_with_our_splits()
    {
        var commands = _nnunet.Commands(epochs: 2, stepSeconds: 0.3);
        await PreprocessAsync(commands);
        var splits = CrossValidationSplits.Build(_nnunet.Cases, "workflow-1");
        CrossValidationSplits.Write(_nnunet.Paths.SplitsFile(NnUnetStandIn.Model.DatasetFolderName), splits);
        var ledger = new ResourceLedger(new LocalCapacity(["0", "1"], Cpus: 4, MemoryMiB: 8_000));
        var clock = Stopwatch.StartNew();
        var intervals = new List<(string Gpus, TimeSpan From, TimeSpan To)>();

        var folds = Enumerable.Range(0, 5).Select(async fold =>
        {
            var allocation = await ledger.AdmitAsync($"fold-{fold}", new LocalRequest(1, 1, 1_000), CancellationToken.None);
            var from = clock.Elapsed;
            try
            {
                return await RunAsync(commands.Train(NnUnetStandIn.Model, _nnunet.Paths, $"{fold}", gpus: 1, cpus: allocation.Cpus), allocation, $"fold-{fold}");
            }
            finally
            {
                lock (intervals)
                {
                    intervals.Add((allocation.CudaVisibleDevices, from, clock.Elapsed));
                }
                ledger.Release(allocation.JobKey);
            }
        }).ToList();
        var exits = await Task.WhenAll(folds);

        Assert.All(exits, e => Assert.Equal(LocalOutcome.Succeeded, e.Outcome));
        // The most folds running at once is reached at some fold's start: count what runs at each start.
        foreach (var start in intervals.Select(i => i.From))
        {
            var running = intervals.Where(b => b.From <= start && start < b.To).ToList();
            Assert.True(running.Count <= 2, $"{running.Count} folds ran at once");
            Assert.Equal(running.Count, running.Select(b => b.Gpus).Distinct().Count());
        }
        Assert.Contains(intervals, a => intervals.Count(b => b.From <= a.From && a.From < b.To) == 2);
        var trained = _nnunet.Invocations().Where(i => i.GetProperty("argv")[0].GetString() == "nnUNetv2_train").ToList();
        Assert.Equal(5, trained.Count);
        Assert.All(trained, i => Assert.Contains(i.GetProperty("cuda_visible_devices").GetString(), new[] { "0", "1" }));
        var model = _nnunet.Paths.ModelFolder(NnUnetStandIn.Model.DatasetFolderName, "nnUNetTrainer", "nnUNetPlans", "3d_fullres");
        for (var fold = 0; fold < 5; fold++)
        {
            Assert.True(File.Exists(Path.Combine(model, $"fold_{fold}", "checkpoint_final.pth")));
            var validated = Directory.GetFiles(Path.Combine(model, $"fold_{fold}", "validation"), "*.nii.gz").Select(f => Path.GetFileName(f)[..^7]).Order();
            Assert.Equal(splits[fold].Val, validated);
        }
    }

    [Fact]
    public async Task A_failing_fold_fails_with_nnunets_error_in_its_log()
    {
        var commands = _nnunet.Commands(epochs: 3, stepSeconds: 0.1, failFold: "1");
        await PreprocessAsync(commands);

        var exit = await RunAsync(commands.Train(NnUnetStandIn.Model, _nnunet.Paths, "1", gpus: 1, cpus: 2), new LocalAllocation("fold-1", ["0"], 2, 100), "fold-1");

        Assert.Equal((LocalOutcome.Failed, 1), (exit.Outcome, exit.ExitCode));
        var log = await File.ReadAllTextAsync(Path.Combine(_directory, "runs", "fold-1", "log.txt"));
        Assert.Contains("Epoch 1", log, StringComparison.Ordinal);
        Assert.EndsWith("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 10.75 GiB total capacity)", log.Trim(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_cpu_only_job_trains_on_the_cpu()
    {
        var commands = _nnunet.Commands(epochs: 1, stepSeconds: 0.05);
        await PreprocessAsync(commands);

        var exit = await RunAsync(commands.Train(NnUnetStandIn.Model, _nnunet.Paths, "all", gpus: 0, cpus: 1), new LocalAllocation("all", [], 1, 100), "all");

        Assert.Equal(LocalOutcome.Succeeded, exit.Outcome);
        Assert.Equal("", _nnunet.Invocations()[^1].GetProperty("cuda_visible_devices").GetString());
    }
}
