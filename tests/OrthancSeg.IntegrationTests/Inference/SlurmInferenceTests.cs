extern alias WorkerHost;

using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.IntegrationTests.Records;
using OrthancSeg.IntegrationTests.Training;
using OrthancSeg.Tests.Support;
using WorkerHost::OrthancSeg.Worker.Training.Slurm;
using static OrthancSeg.IntegrationTests.Datasets.SnapshotHarness;

namespace OrthancSeg.IntegrationTests.Inference;

/// <summary>
/// Inference on the real one-node Slurm cluster: the model is trained locally, the prediction is a batch job the worker submits and follows
/// to its SEG in Orthanc, and a worker killed while the job runs re-attaches to it instead of submitting it again.
/// </summary>
[Collection(SlurmCollection.Name)]
public sealed class SlurmInferenceTests(SlurmCluster cluster)
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);

    private Dictionary<string, string> WorkerSettings()
    {
        // Everything a job reads or writes lies where the cluster's node sees it.
        var raw = Path.Combine(cluster.JobsDirectory, "inference-" + Guid.NewGuid().ToString("N")[..8], "nnUNet_raw");
        Directory.CreateDirectory(raw);
        return Settings(raw, new Dictionary<string, string>
        {
            ["OrthancSeg:Training:Slurm:ConfigFile"] = cluster.ConfigFile,
            ["OrthancSeg:Training:NnUnet:BinDirectory"] = NnUnetStandIn.BinDirectory,
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_EPOCHS"] = "1",
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_STEP_SECONDS"] = "0.05",
            // Long enough to kill the worker while the prediction runs.
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_PREDICT_SECONDS"] = "8",
            ["OrthancSeg:Training:Local:Gpus:0"] = "0",
            ["OrthancSeg:Training:Local:Cpus"] = "2",
            ["OrthancSeg:Training:Local:MemoryMiB"] = "4000",
            ["OrthancSeg:Inference:Backend"] = "slurm",
            ["OrthancSeg:Inference:Gpus"] = "1",
            ["OrthancSeg:Inference:Cpus"] = "1",
            ["OrthancSeg:Inference:MemoryMiB"] = "200",
            ["OrthancSeg:Inference:TimeLimit"] = "00:10:00",
            ["OrthancSeg:Inference:SlurmPollInterval"] = "00:00:00.300",
        });
    }

    [Fact]
    public async Task A_prediction_is_a_slurm_job_that_stores_its_seg_and_a_worker_killed_while_it_runs_reattaches_without_resubmitting()
    {
        await using var harness = await RecordsHarness.StartAsync(WorkerSettings());
        var modelId = await InferenceTests.ActiveModelAsync(harness);
        var series = new TestSeries(slices: 4, rows: 16, columns: 16);
        await UploadAsync(harness, PatternedFiles(series));
        var c = await InferenceTests.CaseOfAsync(harness, series);
        var slurm = new SlurmClient(Options.Create(new SlurmOptions { ConfigFile = cluster.ConfigFile }), NullLogger<SlurmClient>.Instance);

        var inference = (await InferenceTests.Inference(harness).StartInferenceAsync(new StartInferenceRequest { Workflow = "liver-ct", CaseKey = c.CaseKey }))
            .Inference;
        Assert.Equal("slurm", inference.Backend);

        // Once its job runs on the node, kill the worker: the cluster keeps running it.
        var deadline = DateTime.UtcNow + Patience;
        SlurmJob? job = null;
        while (job is not { Phase: SlurmJobPhase.Running })
        {
            Assert.True(DateTime.UtcNow < deadline, $"inference {inference.Id}'s Slurm job did not start ({job?.State})\n{harness.WorkerLog()}");
            await Task.Delay(100);
            var id = (await InferenceTests.Inference(harness).GetInferenceAsync(new GetInferenceRequest { Id = inference.Id })).Inference.BackendJobId;
            job = id.Length == 0 ? null : await slurm.GetJobAsync(long.Parse(id, CultureInfo.InvariantCulture), CancellationToken.None);
        }
        await harness.KillWorkerAsync();
        await harness.StartWorkerAsync();

        await harness.WaitForCountAsync($"SELECT count(*) FROM inferences WHERE id = {inference.Id} AND state IN ('succeeded', 'failed', 'cancelled')", 1, Patience,
            "the inference to end");
        var ended = (await InferenceTests.Inference(harness).GetInferenceAsync(new GetInferenceRequest { Id = inference.Id })).Inference;
        Assert.True(ended.State == InferenceState.Succeeded, $"inference ended {ended.State}: {ended.Error}\n{harness.WorkerLog()}");
        Assert.Equal((InferenceOutcome.SegStored, modelId, 0), (ended.Outcome, ended.ModelId, ended.ExitCode));
        // The restarted worker followed the job it found: the same job id, and one job of this inference in the cluster.
        Assert.Equal(job.JobId.ToString(CultureInfo.InvariantCulture), ended.BackendJobId);
        var names = (await cluster.RunAsync("squeue", ["--noheader", "--states=all", "--format=%j"]))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(n => n.StartsWith($"orthancseg-inference{inference.Id}-", StringComparison.Ordinal)).ToList();
        Assert.Single(names);
        Assert.Equal(1, await harness.CountAsync($"SELECT count(*) FROM inferences WHERE id = {inference.Id} AND host = '{SlurmCluster.NodeName}' AND gpus_given = '1'"));
        // The SEG is in the case's study in Orthanc, recorded as the model's proposal.
        var seg = await harness.Orthanc.GetStringAsync(new Uri($"instances/{ended.SegOrthancInstanceId}/tags?simplify", UriKind.Relative));
        Assert.Contains(series.StudyInstanceUid, seg, StringComparison.Ordinal);
        var label = Assert.Single((await harness.Labels.ListLabelsAsync(new ListLabelsRequest { CaseKey = c.CaseKey })).Labels);
        Assert.Equal((LabelSource.Model, LabelVerdict.Proposed, ended.LabelId), (label.Source, label.Verdict, label.Id));
    }
}
