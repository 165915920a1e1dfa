extern alias WorkerHost;

using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OrthancSeg.IntegrationTests.Fixtures;
using WorkerHost::OrthancSeg.Worker.Training;
using WorkerHost::OrthancSeg.Worker.Training.Slurm;

namespace OrthancSeg.IntegrationTests.Training;

/// <summary>
/// The Slurm path as a training handler will take it: the command builder's batch scripts submitted to the real
/// cluster, preprocessing first and the folds after it (afterok), each fold on a fake GPU, against the stand-ins.
/// </summary>
[Collection(SlurmCollection.Name)]
public sealed class SlurmTrainingTests(SlurmCluster cluster)
{
    [Fact]
    public async Task Preprocessing_then_two_folds_run_on_the_cluster_and_leave_nnunets_files()
    {
        using var nnunet = await NnUnetStandIn.CreateAsync(cluster.JobsDirectory);
        var commands = nnunet.Commands(epochs: 2, stepSeconds: 0.2);
        var client = new SlurmClient(Options.Create(new SlurmOptions { ConfigFile = cluster.ConfigFile }), NullLogger<SlurmClient>.Instance);
        CrossValidationSplits.Write(nnunet.Paths.SplitsFile(NnUnetStandIn.Model.DatasetFolderName), CrossValidationSplits.Build(nnunet.Cases, "w"));
        var run = Guid.NewGuid().ToString("N")[..6];

        var preprocess = await client.SubmitAsync(Request($"orthancseg-{run}-preprocess",
            commands.PlanAndPreprocess(NnUnetStandIn.Model, nnunet.Paths, cpus: 1), nnunet, gpus: 0), CancellationToken.None);
        var folds = new List<SlurmSubmission>();
        foreach (var fold in new[] { "0", "1" })
        {
            folds.Add(await client.SubmitAsync(Request($"orthancseg-{run}-fold{fold}",
                commands.Train(NnUnetStandIn.Model, nnunet.Paths, fold, gpus: 1, cpus: 1), nnunet, gpus: 1, afterOk: [preprocess.JobId]), CancellationToken.None));
        }
        var ended = new List<SlurmJob>();
        foreach (var id in folds.Select(f => f.JobId).Prepend(preprocess.JobId))
        {
            ended.Add(await WaitForEndAsync(client, id));
        }

        Assert.All(ended, j => Assert.True(j.Phase == SlurmJobPhase.Succeeded, $"job {j.Name} ended {j.State} ({j.ExitCode}):\n{Log(j)}"));
        var trained = nnunet.Invocations().Where(i => i.GetProperty("argv")[0].GetString() == "nnUNetv2_train").ToList();
        Assert.Equal(2, trained.Count);
        Assert.All(trained, i => Assert.Contains(i.GetProperty("cuda_visible_devices").GetString(), new[] { "0", "1" }));
        Assert.True(ended[1].StartTime >= ended[0].EndTime && ended[2].StartTime >= ended[0].EndTime, "a fold started before preprocessing ended");
        var model = nnunet.Paths.ModelFolder(NnUnetStandIn.Model.DatasetFolderName, "nnUNetTrainer", "nnUNetPlans", "3d_fullres");
        Assert.True(File.Exists(Path.Combine(model, "fold_1", "validation", "summary.json")));
        Assert.Contains("Mean Validation Dice:", Log(ended[2]), StringComparison.Ordinal);
    }

    private static SlurmJobRequest Request(string name, NnUnetCommand command, NnUnetStandIn nnunet, int gpus, IReadOnlyList<long>? afterOk = null) => new()
    {
        Name = name,
        Script = command.ToBatchScript(),
        OutputPath = Path.Combine(nnunet.Root, "logs", name + ".log"),
        WorkingDirectory = nnunet.Root,
        Resources = new SlurmResources(gpus, 1, 200, TimeSpan.FromMinutes(10)),
        AfterOk = afterOk ?? [],
    };

    private static string Log(SlurmJob job) => job.OutputPath is { } path && File.Exists(path) ? File.ReadAllText(path) : "(no log)";

    private static async Task<SlurmJob> WaitForEndAsync(SlurmClient client, long jobId)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (true)
        {
            var job = await client.GetJobAsync(jobId, CancellationToken.None);
            if (job is { IsFinished: true })
            {
                return job;
            }
            Assert.True(DateTime.UtcNow < deadline, $"job {jobId} did not end within 2 minutes; last seen {job}");
            await Task.Delay(200);
        }
    }
}
