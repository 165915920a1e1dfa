using System.Globalization;
using System.Text.Json;
using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.IntegrationTests.Records;
using static OrthancSeg.IntegrationTests.Datasets.SnapshotHarness;

namespace OrthancSeg.IntegrationTests.Training;

/// <summary>
/// The system status of the local backend while a training fold runs on one of two configured GPUs: the ledger that admitted the fold
/// says which GPU it holds, its CPUs and memory count as admitted, and its job counts as running in the training-fold queue.
/// </summary>
public sealed class LocalBackendStatusTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);
    private readonly string _root = Directory.CreateTempSubdirectory("orthancseg-status-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task A_gpu_held_by_a_running_fold_shows_as_held_by_that_fold_and_its_job_counts_as_running()
    {
        var raw = Path.Combine(_root, "nnUNet_raw");
        Directory.CreateDirectory(raw);
        await using var harness = await RecordsHarness.StartAsync(Settings(raw, new Dictionary<string, string>
        {
            ["OrthancSeg:Training:NnUnet:BinDirectory"] = NnUnetStandIn.BinDirectory,
            // Long enough to look at the fold while it trains; the test cancels it.
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_EPOCHS"] = "1000",
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_STEP_SECONDS"] = "0.3",
            ["OrthancSeg:Training:Local:Gpus:0"] = "0",
            ["OrthancSeg:Training:Local:Gpus:1"] = "1",
            ["OrthancSeg:Training:Local:Cpus"] = "4",
            ["OrthancSeg:Training:Local:MemoryMiB"] = "8000",
            ["OrthancSeg:Training:Local:KillGracePeriod"] = "00:00:02",
        }));
        var snapshot = await TrainingRunTests.SnapshotAsync(harness);
        var training = TrainingRunTests.Training(harness);
        var run = (await training.StartTrainingAsync(new StartTrainingRequest
        {
            Workflow = "liver-ct",
            SnapshotId = snapshot.Id,
            Folds = { "0" },
            Backend = TrainingBackend.Local,
            Resources = new TrainingResources { Gpus = 1, Cpus = 3, MemoryMib = 2500, TimeLimitSeconds = 600 },
        })).Run;
        var system = new SystemService.SystemServiceClient(harness.Channel);
        var admin = WorkerProcessHeaders(harness);

        // Wait for the fold (after preprocessing) to hold its GPU.
        var deadline = DateTimeOffset.UtcNow + Patience;
        GetSystemStatusResponse status;
        TrainingStep fold;
        while (true)
        {
            status = await system.GetSystemStatusAsync(new GetSystemStatusRequest(), admin);
            fold = (await training.GetTrainingRunAsync(new GetTrainingRunRequest { Id = run.Id })).Run.Steps.Single(s => s.Kind == "fold");
            if (fold.State == TrainingState.Running && fold.Gpus.Length > 0 && status.LocalBackend.Gpus.Any(g => g.HeldBy.Length > 0))
            {
                break;
            }
            Assert.True(DateTimeOffset.UtcNow < deadline, $"the fold of run {run.Id} did not start ({fold.State})\n{harness.WorkerLog()}");
            await Task.Delay(200);
        }

        try
        {
            var local = status.LocalBackend;
            Assert.Equal(["0", "1"], local.Gpus.Select(g => g.Id));
            var held = Assert.Single(local.Gpus, g => g.HeldBy.Length > 0);
            Assert.Equal(fold.Gpus, held.Id);
            Assert.StartsWith($"training-{run.Id}-", held.HeldBy, StringComparison.Ordinal);
            var admitted = Assert.Single(local.Runs);
            Assert.Equal((held.HeldBy, 3, 2500L), (admitted.Key, admitted.Cpus, admitted.MemoryMib));
            Assert.Equal((3, 4, 2500L, 8000L), (local.CpusAdmitted, local.CpusCapacity, local.MemoryMibAdmitted, local.MemoryMibCapacity));
            Assert.Contains("2 GPU(s) configured", local.Detail, StringComparison.Ordinal);
            var folds = Assert.Single(status.Queues, q => q.Kind == "training-fold");
            Assert.Equal(1, folds.Running);

            var cli = await CliProcess.RunAsync(["status", "--url", harness.WorkerAddress, "--token-file", harness.AdminTokenFile]);
            Assert.True(cli.ExitCode == 0, cli.Stderr + cli.Stdout);
            var lines = cli.Stdout.Split('\n');
            Assert.Contains(lines, l => l.StartsWith(held.Id + " ", StringComparison.Ordinal) && l.EndsWith(held.HeldBy, StringComparison.Ordinal));
            Assert.Contains(lines, l => l.StartsWith(held.Id == "0" ? "1 " : "0 ", StringComparison.Ordinal) && l.EndsWith("free", StringComparison.Ordinal));
            var json = await CliProcess.RunAsync(["status", "--json", "--url", harness.WorkerAddress, "--token-file", harness.AdminTokenFile]);
            using var document = JsonDocument.Parse(json.Stdout);
            var gpus = document.RootElement.GetProperty("local").GetProperty("gpus").EnumerateArray().ToList();
            Assert.Equal(held.HeldBy, gpus.Single(g => g.GetProperty("id").GetString() == held.Id).GetProperty("heldBy").GetString());
        }
        finally
        {
            await training.CancelTrainingRunAsync(new CancelTrainingRunRequest { Id = run.Id });
        }

        // Cancelled, the fold gives its GPU back.
        deadline = DateTimeOffset.UtcNow + Patience;
        do
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, $"the cancelled fold still holds resources: {status.LocalBackend}\n{harness.WorkerLog()}");
            await Task.Delay(200);
            status = await system.GetSystemStatusAsync(new GetSystemStatusRequest(), admin);
        }
        while (status.LocalBackend.Gpus.Any(g => g.HeldBy.Length > 0) || status.LocalBackend.CpusAdmitted > 0);
    }

    private static Grpc.Core.Metadata WorkerProcessHeaders(RecordsHarness harness) =>
        WorkerProcess.Bearer(File.ReadAllText(harness.AdminTokenFile).Trim());
}

/// <summary>The Slurm backend in the system status, against the one-node cluster and against a controller nobody runs.</summary>
[Collection(SlurmCollection.Name)]
public sealed class SlurmBackendStatusTests(SlurmCluster cluster, PostgresServer postgres) : IClassFixture<PostgresServer>
{
    private async Task<(GetSystemStatusResponse Status, TimeSpan Took, CliResult Cli)> StatusAsync(string slurmConfig)
    {
        await using var worker = await WorkerProcess.StartAsync(postgres, new Dictionary<string, string>
        {
            ["OrthancSeg:Training:Slurm:ConfigFile"] = slurmConfig,
        });
        using var channel = worker.CreateChannel();
        var started = DateTimeOffset.UtcNow;
        var status = await new SystemService.SystemServiceClient(channel).GetSystemStatusAsync(new GetSystemStatusRequest(), WorkerProcess.Bearer(worker.ViewerToken));
        var took = DateTimeOffset.UtcNow - started;
        var cli = await CliProcess.RunAsync(["status", "--json", "--url", worker.Address, "--token-file", worker.AdminTokenFile]);
        return (status, took, cli);
    }

    [Fact]
    public async Task A_configured_cluster_is_reported_healthy_with_its_partition_and_node()
    {
        var (status, _, cli) = await StatusAsync(cluster.ConfigFile);

        var slurm = status.SlurmBackend;
        Assert.True(slurm.Configured);
        Assert.True(slurm.Healthy, slurm.Detail);
        var partition = Assert.Single(slurm.Partitions);
        Assert.Equal(SlurmCluster.Partition, partition.Name);
        Assert.Contains(partition.Nodes, n => n.StartsWith(SlurmCluster.NodeName + " (", StringComparison.Ordinal));
        Assert.True(Assert.Single(status.Dependencies, d => d.Name == "slurm").Healthy);
        using var json = JsonDocument.Parse(cli.Stdout);
        Assert.Equal(SlurmCluster.Partition, json.RootElement.GetProperty("slurm").GetProperty("partitions")[0].GetProperty("name").GetString());
    }

    [Fact]
    public async Task A_controller_that_does_not_answer_makes_slurm_unhealthy_within_the_bound_and_the_cli_exit_1()
    {
        var (status, took, cli) = await StatusAsync(cluster.WriteUnreachableConfig());

        var slurm = status.SlurmBackend;
        Assert.True(slurm.Configured);
        Assert.False(slurm.Healthy);
        Assert.Empty(slurm.Partitions);
        Assert.False(Assert.Single(status.Dependencies, d => d.Name == "slurm").Healthy);
        // Slurm's own commands give up after about 9 s and the status waits at most 12 s for them: never the 30 s command timeout.
        Assert.True(took < TimeSpan.FromSeconds(20), string.Create(CultureInfo.InvariantCulture, $"status took {took}"));
        Assert.Equal(1, cli.ExitCode);
    }
}
