extern alias WorkerHost;

using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OrthancSeg.IntegrationTests.Fixtures;
using WorkerHost::OrthancSeg.Worker.Errors;
using WorkerHost::OrthancSeg.Worker.Training.Slurm;

namespace OrthancSeg.IntegrationTests.Training;

/// <summary>SlurmClient against a real one-node cluster with two fake GPUs.</summary>
[Collection(SlurmCollection.Name)]
public sealed class SlurmClientTests(SlurmCluster cluster)
{
    private static readonly TimeSpan JobDeadline = TimeSpan.FromSeconds(60);

    private SlurmClient Client(string? configFile = null) =>
        new(Options.Create(new SlurmOptions { ConfigFile = configFile ?? cluster.ConfigFile, CommandTimeout = TimeSpan.FromSeconds(20) }),
            NullLogger<SlurmClient>.Instance);

    private SlurmJobRequest Job(string script, int gpus = 0, IReadOnlyList<long>? afterOk = null, [System.Runtime.CompilerServices.CallerMemberName] string test = "")
    {
        var name = $"t-{test.Replace('_', '-')}-{Guid.NewGuid().ToString("N")[..6]}";
        if (name.Length > 120)
        {
            name = name[^120..].TrimStart('-');
        }
        return new SlurmJobRequest
        {
            Name = name,
            Script = "#!/bin/bash\n" + script + "\n",
            OutputPath = Path.Combine(cluster.JobsDirectory, name, "job.log"),
            WorkingDirectory = cluster.JobsDirectory,
            Resources = new SlurmResources(gpus, 1, 50, TimeSpan.FromMinutes(5)),
            AfterOk = afterOk ?? [],
        };
    }

    private async Task<SlurmJob> WaitForAsync(long jobId, Func<SlurmJob, bool> condition, string what)
    {
        var client = Client();
        SlurmJob? last = null;
        var deadline = DateTime.UtcNow + JobDeadline;
        while (DateTime.UtcNow < deadline)
        {
            last = await client.GetJobAsync(jobId, CancellationToken.None);
            if (last is not null && condition(last))
            {
                return last;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"job {jobId} did not reach {what} within {JobDeadline}; last seen: {last}");
    }

    [Fact]
    public async Task A_gpu_job_runs_on_its_own_fake_gpu_and_succeeds()
    {
        var request = Job("echo \"gpus=$CUDA_VISIBLE_DEVICES node=$SLURMD_NODENAME\"", gpus: 1);

        var submission = await Client().SubmitAsync(request, CancellationToken.None);
        var job = await WaitForAsync(submission.JobId, j => j.IsFinished, "an end");

        Assert.False(submission.AlreadySubmitted);
        Assert.Equal((SlurmJobPhase.Succeeded, 0, SlurmCluster.NodeName), (job.Phase, job.ExitCode, job.NodeList));
        Assert.Equal(request.Name, job.Name);
        Assert.Matches(@"^gpus=[01] node=fxnode$", (await File.ReadAllTextAsync(request.OutputPath)).Trim());
    }

    [Fact]
    public async Task Two_gpu_jobs_at_once_get_different_gpus()
    {
        var client = Client();
        var flag = Path.Combine(cluster.JobsDirectory, Guid.NewGuid().ToString("N"));
        // Each job holds its GPU until the flag exists, so both run at the same time.
        var first = Job($"echo $CUDA_VISIBLE_DEVICES; while [ ! -e {flag} ]; do sleep 0.1; done", gpus: 1);
        var second = Job($"echo $CUDA_VISIBLE_DEVICES; while [ ! -e {flag} ]; do sleep 0.1; done", gpus: 1);

        var a = await client.SubmitAsync(first, CancellationToken.None);
        var b = await client.SubmitAsync(second, CancellationToken.None);
        await WaitForAsync(a.JobId, j => j.Phase == SlurmJobPhase.Running, "running");
        await WaitForAsync(b.JobId, j => j.Phase == SlurmJobPhase.Running, "running");
        await File.WriteAllTextAsync(flag, "");
        await WaitForAsync(a.JobId, j => j.Phase == SlurmJobPhase.Succeeded, "success");
        await WaitForAsync(b.JobId, j => j.Phase == SlurmJobPhase.Succeeded, "success");

        var gpus = new[] { first, second }.Select(r => File.ReadAllText(r.OutputPath).Trim()).Order().ToArray();
        Assert.Equal(["0", "1"], gpus);
    }

    [Fact]
    public async Task A_dependent_job_waits_until_its_dependency_succeeded()
    {
        var client = Client();
        var flag = Path.Combine(cluster.JobsDirectory, Guid.NewGuid().ToString("N"));
        var preprocess = await client.SubmitAsync(Job($"while [ ! -e {flag} ]; do sleep 0.1; done"), CancellationToken.None);
        var fold = await client.SubmitAsync(Job("echo fold ran", afterOk: [preprocess.JobId]), CancellationToken.None);

        await WaitForAsync(preprocess.JobId, j => j.Phase == SlurmJobPhase.Running, "running");
        var held = await WaitForAsync(fold.JobId, j => j.Reason == "Dependency", "held on its dependency");
        Assert.Equal(SlurmJobPhase.Queued, held.Phase);

        await File.WriteAllTextAsync(flag, "");
        var done = await WaitForAsync(fold.JobId, j => j.IsFinished, "an end");
        var first = await client.GetJobAsync(preprocess.JobId, CancellationToken.None);

        Assert.Equal(SlurmJobPhase.Succeeded, done.Phase);
        Assert.True(done.StartTime >= first!.EndTime, $"fold started {done.StartTime}, before preprocessing ended {first.EndTime}");
    }

    [Fact]
    public async Task A_failing_job_reports_failure_with_its_exit_code_and_its_dependents_never_run()
    {
        var client = Client();
        var failing = await client.SubmitAsync(Job("echo 'RuntimeError: Some images have errors' >&2; exit 3"), CancellationToken.None);
        var dependent = await client.SubmitAsync(Job("echo should not run", afterOk: [failing.JobId]), CancellationToken.None);

        var job = await WaitForAsync(failing.JobId, j => j.IsFinished, "an end");
        var never = await WaitForAsync(dependent.JobId, j => j.IsFinished, "an end");

        Assert.Equal((SlurmJobPhase.Failed, "FAILED", 3), (job.Phase, job.State, job.ExitCode));
        Assert.Contains("RuntimeError: Some images have errors", await File.ReadAllTextAsync(job.OutputPath!));
        Assert.Equal((SlurmJobPhase.Cancelled, "DependencyNeverSatisfied"), (never.Phase, never.Reason));
    }

    [Fact]
    public async Task Cancel_stops_a_running_job()
    {
        var client = Client();
        var submission = await client.SubmitAsync(Job("echo started; sleep 300"), CancellationToken.None);
        await WaitForAsync(submission.JobId, j => j.Phase == SlurmJobPhase.Running, "running");

        await client.CancelAsync(submission.JobId, CancellationToken.None);
        var job = await WaitForAsync(submission.JobId, j => j.IsFinished, "an end");

        Assert.Equal((SlurmJobPhase.Cancelled, "CANCELLED"), (job.Phase, job.State));
    }

    [Fact]
    public async Task A_request_beyond_the_node_is_refused_with_the_reason_and_nothing_is_submitted()
    {
        var client = Client();
        var tooManyGpus = Job("true", gpus: SlurmCluster.Gpus + 1);
        var tooManyCpus = Job("true") with { Resources = new SlurmResources(0, cluster.Cpus + 1, 50, TimeSpan.FromMinutes(1)) };
        var unknownPartition = Job("true") with { Resources = new SlurmResources(0, 1, 50, TimeSpan.FromMinutes(1), "nope") };

        var gpus = await Assert.ThrowsAsync<SlurmRequestRefusedException>(() => client.SubmitAsync(tooManyGpus, CancellationToken.None));
        var cpus = await Assert.ThrowsAsync<SlurmRequestRefusedException>(() => client.SubmitAsync(tooManyCpus, CancellationToken.None));
        var partition = await Assert.ThrowsAsync<SlurmRequestRefusedException>(() => client.SubmitAsync(unknownPartition, CancellationToken.None));

        Assert.Contains($"no node of partition 'debug' has {SlurmCluster.Gpus + 1} GPU(s)", gpus.Message, StringComparison.Ordinal);
        Assert.Contains($"its largest have {SlurmCluster.Gpus} GPU(s), {cluster.Cpus} CPU(s)", cpus.Message, StringComparison.Ordinal);
        Assert.Equal("Slurm has no partition 'nope' (it has: debug)", partition.Message);
        Assert.Null(await client.FindByNameAsync(tooManyGpus.Name, CancellationToken.None));
        Assert.Null(await client.FindByNameAsync(tooManyCpus.Name, CancellationToken.None));
    }

    [Fact]
    public async Task A_retried_submission_finds_the_job_already_submitted_under_its_name()
    {
        var request = Job("sleep 2");
        var first = await Client().SubmitAsync(request, CancellationToken.None);

        // A new client, as after a worker restart: only the deterministic name links the two.
        var again = await Client().SubmitAsync(request, CancellationToken.None);
        var found = await Client().FindByNameAsync(request.Name, CancellationToken.None);
        await WaitForAsync(first.JobId, j => j.IsFinished, "an end");
        var afterTheEnd = await Client().SubmitAsync(request, CancellationToken.None);

        Assert.Equal(new SlurmSubmission(first.JobId, AlreadySubmitted: true), again);
        Assert.Equal(first.JobId, found?.JobId);
        Assert.Equal(new SlurmSubmission(first.JobId, AlreadySubmitted: true), afterTheEnd);
        var listed = await cluster.RunAsync("squeue", ["--noheader", "--states=all", $"--name={request.Name}", "--format=%i"]);
        Assert.Equal([first.JobId.ToString(System.Globalization.CultureInfo.InvariantCulture)], listed.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task Partitions_show_the_node_with_its_gpus_cpus_and_memory()
    {
        var partitions = await Client().GetPartitionsAsync(CancellationToken.None);

        var partition = Assert.Single(partitions);
        Assert.Equal(("debug", true), (partition.Name, partition.IsDefault));
        var node = Assert.Single(partition.Nodes);
        Assert.Equal((SlurmCluster.NodeName, SlurmCluster.Gpus, cluster.Cpus, (long)SlurmCluster.MemoryMiB), (node.Name, node.Gpus, node.Cpus, node.MemoryMiB));
        Assert.True(await Client().PingAsync(CancellationToken.None));
    }

    [Fact]
    public async Task An_unreachable_controller_is_unavailable_within_seconds()
    {
        var client = Client(cluster.WriteUnreachableConfig());
        var stopwatch = Stopwatch.StartNew();

        var submit = await Assert.ThrowsAsync<UnavailableException>(() => client.SubmitAsync(Job("true"), CancellationToken.None));
        var status = await Assert.ThrowsAsync<UnavailableException>(() => client.GetJobAsync(1, CancellationToken.None));
        var cancel = await Assert.ThrowsAsync<UnavailableException>(() => client.CancelAsync(1, CancellationToken.None));

        Assert.Contains("Unable to contact slurm controller", submit.Message, StringComparison.Ordinal);
        Assert.Contains("Unable to contact slurm controller", status.Message, StringComparison.Ordinal);
        Assert.Contains("Unable to contact slurm controller", cancel.Message, StringComparison.Ordinal);
        Assert.All(new[] { submit, status, cancel }, e => Assert.Equal(SlurmClient.Dependency, e.Dependency));
        Assert.False(await client.PingAsync(CancellationToken.None));
        // MessageTimeout=3 makes each command give up after 2 s (scontrol show job twice that): far from a hang.
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(20), $"took {stopwatch.Elapsed}");
    }

    [Fact]
    public async Task Missing_slurm_commands_are_unavailable_not_a_crash()
    {
        var client = new SlurmClient(Options.Create(new SlurmOptions { BinDirectory = "/nonexistent/slurm/bin", ConfigFile = cluster.ConfigFile }),
            NullLogger<SlurmClient>.Instance);

        var e = await Assert.ThrowsAsync<UnavailableException>(() => client.GetJobAsync(1, CancellationToken.None));

        Assert.Contains("/nonexistent/slurm/bin/scontrol", e.Message, StringComparison.Ordinal);
    }
}
