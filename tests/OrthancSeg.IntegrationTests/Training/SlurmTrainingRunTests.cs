extern alias WorkerHost;

using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.IntegrationTests.Records;
using WorkerHost::OrthancSeg.Worker.Training.Slurm;
using static OrthancSeg.IntegrationTests.Datasets.SnapshotHarness;

namespace OrthancSeg.IntegrationTests.Training;

/// <summary>
/// Training runs on the real one-node Slurm cluster: the worker submits preprocessing and the folds (held by afterok), follows them to
/// success, and a worker killed in the middle re-attaches to the submitted jobs instead of submitting them again.
/// </summary>
[Collection(SlurmCollection.Name)]
public sealed class SlurmTrainingRunTests(SlurmCluster cluster)
{
    private Dictionary<string, string> WorkerSettings(int epochs)
    {
        var raw = Path.Combine(cluster.JobsDirectory, "run-" + Guid.NewGuid().ToString("N")[..8], "nnUNet_raw");
        Directory.CreateDirectory(raw);
        return Settings(raw, new Dictionary<string, string>
        {
            ["OrthancSeg:Training:DefaultBackend"] = "slurm",
            ["OrthancSeg:Training:SlurmPollInterval"] = "00:00:00.300",
            ["OrthancSeg:Training:Slurm:ConfigFile"] = cluster.ConfigFile,
            ["OrthancSeg:Training:NnUnet:BinDirectory"] = NnUnetStandIn.BinDirectory,
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_EPOCHS"] = epochs.ToString(CultureInfo.InvariantCulture),
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_STEP_SECONDS"] = "0.5",
        });
    }

    [Fact]
    public async Task A_run_submits_preprocessing_and_folds_held_by_afterok_and_a_worker_killed_midway_reattaches_without_resubmitting()
    {
        await using var harness = await RecordsHarness.StartAsync(WorkerSettings(epochs: 4));
        var snapshot = await TrainingRunTests.SnapshotAsync(harness);
        var training = TrainingRunTests.Training(harness);
        var slurm = new SlurmClient(Options.Create(new SlurmOptions { ConfigFile = cluster.ConfigFile }), NullLogger<SlurmClient>.Instance);

        var request = new StartTrainingRequest
        {
            Workflow = "liver-ct",
            SnapshotId = snapshot.Id,
            Folds = { "0", "1" },
            Resources = new TrainingResources { Gpus = 1, Cpus = 1, MemoryMib = 200, TimeLimitSeconds = 600 },
        };
        // More GPUs than the node has can never run: refused before anything is submitted.
        var tooBig = request.Clone();
        tooBig.Resources.Gpus = SlurmCluster.Gpus + 1;
        var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await training.StartTrainingAsync(tooBig));
        Assert.Equal(Grpc.Core.StatusCode.FailedPrecondition, refused.StatusCode);

        var run = (await training.StartTrainingAsync(request)).Run;
        Assert.Equal(TrainingBackend.Slurm, run.Backend);

        // Once the folds are submitted, kill the worker: the cluster keeps running them.
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while ((await training.GetTrainingRunAsync(new GetTrainingRunRequest { Id = run.Id })).Run.Steps.Any(s => s.BackendJobId.Length == 0))
        {
            Assert.True(DateTime.UtcNow < deadline, $"run {run.Id} did not submit its steps\n{harness.WorkerLog()}");
            await Task.Delay(100);
        }
        var submitted = (await training.GetTrainingRunAsync(new GetTrainingRunRequest { Id = run.Id })).Run.Steps.Select(s => long.Parse(s.BackendJobId, CultureInfo.InvariantCulture)).ToList();
        var fold = await slurm.GetJobAsync(submitted[1], CancellationToken.None);
        Assert.True(fold is { IsFinished: false }, $"fold 0 was no longer running when the worker was killed: {fold}");
        await harness.KillWorkerAsync();
        await harness.StartWorkerAsync();

        var ended = (await TrainingRunTests.WatchAsync(harness, run.Id))[^1];

        Assert.True(ended.State == TrainingState.Succeeded, $"run ended {ended.State}: {ended.Error}\n{harness.WorkerLog()}");
        Assert.Equal(submitted, ended.Steps.Select(s => long.Parse(s.BackendJobId, CultureInfo.InvariantCulture)));
        Assert.All(ended.Steps, s => Assert.True(s.State == TrainingState.Succeeded && s.ExitCode == 0 && s.Host == SlurmCluster.NodeName,
            $"step {s.Kind} {s.Fold}: {s.State} on '{s.Host}' {s.Error}"));
        Assert.Equal(["", "1", "1"], ended.Steps.Select(s => s.Gpus));
        // One cluster job per step: the restarted worker followed the jobs it found instead of submitting again.
        var names = (await cluster.RunAsync("squeue", ["--noheader", "--states=all", "--format=%j"]))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(n => n.StartsWith($"orthancseg-run{run.Id}-{run.CreateTime.ToDateTimeOffset().ToUnixTimeMilliseconds()}-", StringComparison.Ordinal))
            .Select(n => n.Split('-', 4)[3]).Order().ToList();
        Assert.Equal(["fold-0", "fold-1", "preprocess"], names);
        // afterok held the folds until preprocessing had succeeded.
        var jobs = new List<SlurmJob>();
        foreach (var id in submitted)
        {
            jobs.Add((await slurm.GetJobAsync(id, CancellationToken.None))!);
        }
        Assert.All(jobs.Skip(1), j => Assert.True(j.StartTime >= jobs[0].EndTime, $"fold job {j.JobId} started {j.StartTime}, before preprocessing ended {jobs[0].EndTime}"));
        var model = (await TrainingRunTests.Models(harness).GetModelAsync(new GetModelRequest { Id = ended.ModelId })).Model;
        Assert.True(model.HasMeanDice);
        Assert.Equal(["0", "1"], model.Folds);
    }

    [Fact]
    public async Task Cancelling_a_run_scancels_its_running_and_held_slurm_jobs()
    {
        await using var harness = await RecordsHarness.StartAsync(WorkerSettings(epochs: 200));
        var snapshot = await TrainingRunTests.SnapshotAsync(harness);
        var training = TrainingRunTests.Training(harness);
        var slurm = new SlurmClient(Options.Create(new SlurmOptions { ConfigFile = cluster.ConfigFile }), NullLogger<SlurmClient>.Instance);
        var run = (await training.StartTrainingAsync(new StartTrainingRequest
        {
            Workflow = "liver-ct",
            SnapshotId = snapshot.Id,
            Folds = { "0", "1" },
            Resources = new TrainingResources { Gpus = 1, Cpus = 1, MemoryMib = 200, TimeLimitSeconds = 600 },
        })).Run;
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        TrainingRun current;
        while ((current = (await training.GetTrainingRunAsync(new GetTrainingRunRequest { Id = run.Id })).Run).Steps.Skip(1).Any(s => s.State != TrainingState.Running)
            && current.State is TrainingState.Queued or TrainingState.Running)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the folds of run {run.Id} did not start\n{harness.WorkerLog()}");
            await Task.Delay(200);
        }
        Assert.True(current.Steps.Skip(1).All(s => s.State == TrainingState.Running), $"steps: {current}");

        var cancelled = (await training.CancelTrainingRunAsync(new CancelTrainingRunRequest { Id = run.Id })).Run;

        Assert.Equal(TrainingState.Cancelled, cancelled.State);
        Assert.All(cancelled.Steps.Skip(1), s => Assert.Equal(TrainingState.Cancelled, s.State));
        foreach (var step in cancelled.Steps.Skip(1))
        {
            // scancel is asynchronous: the job passes through COMPLETING while slurmd signals its processes.
            var id = long.Parse(step.BackendJobId, CultureInfo.InvariantCulture);
            SlurmJob? job;
            while ((job = await slurm.GetJobAsync(id, CancellationToken.None)) is { IsFinished: false } && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
            Assert.True(job is { Phase: SlurmJobPhase.Cancelled }, $"Slurm job {id} is {job?.State} after the cancel");
        }
    }
}
