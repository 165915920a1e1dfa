using OrthancSeg.Worker.Training.Slurm;

namespace OrthancSeg.Worker.Tests.Training.Slurm;

/// <summary>What SlurmClient decides before it runs anything: the sbatch command line, and requests that can never run.</summary>
public sealed class SlurmClientRulesTests
{
    private static readonly SlurmPartition[] Partitions =
    [
        new("gpu", IsDefault: true, MaxTime: TimeSpan.FromDays(2), [new SlurmNode("g1", 32, 256_000, 4, "idle"), new SlurmNode("g2", 64, 128_000, 2, "mixed")]),
        new("cpu", IsDefault: false, MaxTime: null, [new SlurmNode("c1", 128, 512_000, 0, "idle")]),
    ];

    private static SlurmResources Ask(int gpus = 1, int cpus = 8, long memory = 32_000, string? partition = null, double hours = 24) =>
        new(gpus, cpus, memory, TimeSpan.FromHours(hours), partition);

    [Fact]
    public void Sbatch_gets_every_resource_the_dependency_and_the_name()
    {
        var request = new SlurmJobRequest
        {
            Name = "orthancseg-run12-fold3",
            Script = "#!/bin/bash\ntrue\n",
            OutputPath = "/shared/logs/run12/fold3.log",
            WorkingDirectory = "/shared/work",
            Resources = Ask(gpus: 2, cpus: 8, memory: 32768, partition: "gpu", hours: 24),
            AfterOk = [17, 18],
            Comment = "run=12",
        };

        var arguments = SlurmClient.SbatchArguments(request, "NONE");

        Assert.Equal(
        [
            "--parsable", "--job-name=orthancseg-run12-fold3", "--output=/shared/logs/run12/fold3.log", "--error=/shared/logs/run12/fold3.log",
            "--chdir=/shared/work", "--nodes=1", "--ntasks=1", "--cpus-per-task=8", "--mem=32768M", "--time=1-00:00:00", "--export=NONE",
            "--gres=gpu:2", "--partition=gpu", "--dependency=afterok:17:18", "--comment=run=12",
        ], arguments);
    }

    [Fact]
    public void A_cpu_only_job_asks_for_no_gres_and_the_default_partition()
    {
        var request = new SlurmJobRequest
        {
            Name = "n", Script = "#!/bin/sh\n", OutputPath = "/l", WorkingDirectory = "/", Resources = Ask(gpus: 0),
        };

        var arguments = SlurmClient.SbatchArguments(request, "NONE");

        Assert.DoesNotContain(arguments, a => a.StartsWith("--gres", StringComparison.Ordinal) || a.StartsWith("--partition", StringComparison.Ordinal));
    }

    [Fact]
    public void A_request_that_fits_one_node_runs_in_its_partition()
    {
        Assert.Equal("gpu", SlurmClient.WhereItCanRun(Ask(gpus: 4, cpus: 32), Partitions).Partition?.Name);
        Assert.Equal("cpu", SlurmClient.WhereItCanRun(Ask(gpus: 0, cpus: 100, partition: "cpu", hours: 500), Partitions).Partition?.Name);
    }

    [Theory]
    [InlineData(5, 8, 32_000, "gpu", 24, "no node of partition 'gpu' has 5 GPU(s)")]
    // g1 has the GPUs and g2 the CPUs, but no one node has both.
    [InlineData(4, 64, 32_000, null, 24, "no node of partition 'gpu' has 4 GPU(s), 64 CPU(s)")]
    [InlineData(1, 8, 300_000, "gpu", 24, "its largest have 4 GPU(s), 64 CPU(s), 256000 MiB")]
    [InlineData(1, 8, 32_000, "cpu", 24, "no node of partition 'cpu' has 1 GPU(s)")]
    [InlineData(1, 8, 32_000, "nope", 24, "Slurm has no partition 'nope' (it has: gpu, cpu)")]
    [InlineData(1, 8, 32_000, "gpu", 49, "above partition 'gpu''s maximum of 2.00:00:00")]
    [InlineData(1, 0, 32_000, "gpu", 1, "a Slurm job needs 0 or more GPUs, at least 1 CPU")]
    [InlineData(1, 1, 32_000, "gpu", 0, "a Slurm job needs 0 or more GPUs, at least 1 CPU, 1 MiB and 1 s")]
    public void A_request_that_can_never_run_is_refused_with_the_reason(int gpus, int cpus, long memory, string? partition, double hours, string reason)
    {
        var (where, why) = SlurmClient.WhereItCanRun(Ask(gpus, cpus, memory, partition, hours), Partitions);

        Assert.Null(where);
        Assert.Contains(reason, why, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_a_default_partition_one_must_be_named()
    {
        var (where, why) = SlurmClient.WhereItCanRun(Ask(gpus: 0), [Partitions[1]]);

        Assert.Null(where);
        Assert.Equal("no partition was requested and Slurm has no default partition (it has: cpu)", why);
    }
}
