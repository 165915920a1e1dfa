using OrthancSeg.Worker.Training.Slurm;

namespace OrthancSeg.Worker.Tests.Training.Slurm;

/// <summary>The parsers against real Slurm 22.05 output (Recorded/README.md says how it was captured).</summary>
public sealed class SlurmOutputTests
{
    private static string Recorded(string file) =>
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Training", "Slurm", "Recorded", file));

    [Fact]
    public void Sbatch_parsable_prints_the_job_id()
    {
        Assert.Equal(3, SlurmOutput.ParseSubmittedJobId(Recorded("sbatch-fail.stdout")));
        Assert.Equal(42, SlurmOutput.ParseSubmittedJobId("42;cluster2\n"));
        Assert.Throws<FormatException>(() => SlurmOutput.ParseSubmittedJobId(""));
    }

    [Fact]
    public void Squeue_lists_every_state_with_reason_nodes_and_comment()
    {
        var jobs = SlurmOutput.ParseSqueue(Recorded("squeue-all-final.stdout")).ToDictionary(j => j.JobId);

        Assert.Equal(10, jobs.Count);
        Assert.Equal(("orthancseg-t1-pre", "COMPLETED", SlurmJobPhase.Succeeded, "vm", "key=t1"),
            (jobs[1].Name, jobs[1].State, jobs[1].Phase, jobs[1].NodeList, jobs[1].Comment));
        Assert.Equal((SlurmJobPhase.Failed, "NonZeroExitCode"), (jobs[3].Phase, jobs[3].Reason));
        Assert.Equal((SlurmJobPhase.Cancelled, "DependencyNeverSatisfied", null), (jobs[5].Phase, jobs[5].Reason, jobs[5].NodeList));
        Assert.Equal((SlurmJobPhase.Failed, "BadConstraints"), (jobs[6].Phase, jobs[6].Reason));
        Assert.Equal(SlurmJobPhase.Running, jobs[8].Phase);
        Assert.Equal(new DateTime(2026, 12, 4, 20, 27, 36), jobs[1].EndTime);
        Assert.Null(jobs[2].Comment);
        Assert.Null(jobs[1].ExitCode);
    }

    [Fact]
    public void Squeue_shows_a_dependent_job_held_until_its_dependency_succeeds()
    {
        var jobs = SlurmOutput.ParseSqueue(Recorded("squeue-mixed.stdout")).ToDictionary(j => j.JobId);

        Assert.Equal((SlurmJobPhase.Queued, "Dependency", false), (jobs[5].Phase, jobs[5].Reason, jobs[5].WillNeverStart));
        Assert.False(jobs[5].IsFinished);
        Assert.True(jobs[3].IsFinished);
    }

    [Fact]
    public void Squeue_by_name_returns_only_the_named_jobs()
    {
        var jobs = SlurmOutput.ParseSqueue(Recorded("squeue-byname.stdout"));

        Assert.Equal(["orthancseg-long", "orthancseg-t1-f0"], jobs.Select(j => j.Name).Order());
    }

    [Fact]
    public void Scontrol_reports_the_exit_code_of_a_failed_job()
    {
        var job = SlurmOutput.ParseScontrolJob(Recorded("scontrol-failed.stdout"));

        Assert.Equal((3L, "orthancseg-fail", "FAILED", "NonZeroExitCode", 3, 0), (job.JobId, job.Name, job.State, job.Reason, job.ExitCode, job.Signal));
        Assert.Equal(SlurmJobPhase.Failed, job.Phase);
        Assert.Equal("/tmp/trn/slurm.6TPz/jobs/fail.log", job.OutputPath);
        Assert.Equal("vm", job.NodeList);
    }

    [Theory]
    [InlineData("scontrol-completed.stdout", "COMPLETED", "Succeeded", 0, 0)]
    [InlineData("scontrol-cancelled.stdout", "CANCELLED", "Cancelled", 0, 15)]
    [InlineData("scontrol-timeout.stdout", "TIMEOUT", "Failed", 0, 15)]
    [InlineData("scontrol-gpu3.stdout", "FAILED", "Failed", 0, 1)]
    [InlineData("scontrol-running.stdout", "RUNNING", "Running", 0, 0)]
    public void Scontrol_maps_every_recorded_end_onto_a_phase(string file, string state, string phaseName, int exitCode, int signal)
    {
        var phase = Enum.Parse<SlurmJobPhase>(phaseName);
        var job = SlurmOutput.ParseScontrolJob(Recorded(file));

        Assert.Equal((state, phase, exitCode, signal), (job.State, job.Phase, job.ExitCode, job.Signal));
    }

    [Fact]
    public void Scontrol_keeps_a_comment_that_itself_holds_an_equals_sign()
    {
        var job = SlurmOutput.ParseScontrolJob(Recorded("scontrol-completed.stdout"));

        Assert.Equal("key=t1", job.Comment);
        Assert.Equal(new DateTime(2026, 12, 4, 20, 27, 31), job.StartTime);
    }

    [Fact]
    public void Jobs_that_can_never_start_are_recognised_while_pending()
    {
        var tooManyCpus = SlurmOutput.ParseScontrolJob(Recorded("scontrol-toomanycpus.stdout"));
        var waiting = SlurmOutput.ParseScontrolJob(Recorded("scontrol-depfail.stdout"));
        var killedDependency = SlurmOutput.ParseScontrolJob(Recorded("scontrol-depfail-later.stdout"));

        Assert.Equal(("PartitionConfig", true), (tooManyCpus.Reason, tooManyCpus.WillNeverStart));
        Assert.False(waiting.WillNeverStart);
        Assert.Null(waiting.StartTime);
        Assert.Equal((SlurmJobPhase.Cancelled, "DependencyNeverSatisfied"), (killedDependency.Phase, killedDependency.Reason));
    }

    [Fact]
    public void Sinfo_gives_partitions_with_their_nodes_default_and_limits()
    {
        var partitions = SlurmOutput.ParseSinfoNodes(Recorded("sinfo-nodes.stdout"));

        Assert.Equal(["debug", "cpu"], partitions.Select(p => p.Name));
        Assert.True(partitions[0].IsDefault);
        Assert.False(partitions[1].IsDefault);
        Assert.Null(partitions[0].MaxTime);
        Assert.Equal(new SlurmNode("vm", 2, 1000, 2, "idle"), Assert.Single(partitions[0].Nodes));
    }

    [Theory]
    [InlineData("gpu:2", 2)]
    [InlineData("(null)", 0)]
    [InlineData("gpu:a100:4(S:0-1)", 4)]
    [InlineData("gpu:tesla:2,mps:200", 2)]
    [InlineData("gpu:a100:1,gpu:v100:2(S:0)", 3)]
    [InlineData("mps:100", 0)]
    public void Gres_strings_count_their_gpus(string gres, int gpus) => Assert.Equal(gpus, SlurmOutput.GpuCount(gres));

    [Theory]
    [InlineData("infinite", null)]
    [InlineData("30", "00:30:00")]
    [InlineData("5:00", "00:05:00")]
    [InlineData("1:00:00", "01:00:00")]
    [InlineData("2-00:00:00", "2.00:00:00")]
    [InlineData("1-12", "1.12:00:00")]
    public void Durations_read_every_slurm_form(string text, string? expected) =>
        Assert.Equal(expected is null ? null : TimeSpan.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), SlurmOutput.Duration(text));

    [Theory]
    [InlineData("00:00:05", "0-00:01:00")]
    [InlineData("1.00:00:00", "1-00:00:00")]
    [InlineData("1.02:03:30", "1-02:04:00")]
    public void Time_limits_round_up_to_whole_minutes(string limit, string expected) =>
        Assert.Equal(expected, SlurmOutput.FormatTimeLimit(TimeSpan.Parse(limit, System.Globalization.CultureInfo.InvariantCulture)));

    [Theory]
    [InlineData("sbatch-controller-down.stderr")]
    [InlineData("squeue-controller-down.stderr")]
    [InlineData("scontrol-controller-down.stderr")]
    [InlineData("sinfo-controller-down.stderr")]
    [InlineData("scancel-controller-down.stderr")]
    [InlineData("squeue-munge-down.stderr")]
    [InlineData("sbatch-munge-down.stderr")]
    public void A_down_controller_or_munge_reads_as_unavailable(string file) => Assert.True(SlurmOutput.IsUnavailable(Recorded(file)));

    [Theory]
    [InlineData("sbatch-gpu3.stderr")]
    [InlineData("sbatch-bad-partition.stderr")]
    [InlineData("scontrol-unknown.stderr")]
    [InlineData("sacct-disabled.stderr")]
    public void Refusals_and_unknown_jobs_are_not_outages(string file) => Assert.False(SlurmOutput.IsUnavailable(Recorded(file)));

    [Fact]
    public void Unknown_jobs_and_disabled_accounting_are_recognised()
    {
        Assert.True(SlurmOutput.IsUnknownJob(Recorded("scontrol-unknown.stderr")));
        Assert.True(SlurmOutput.IsUnknownJob(Recorded("squeue-unknown-job.stderr")));
        Assert.True(SlurmOutput.IsAccountingDisabled(Recorded("sacct-disabled.stderr")));
    }

    [Fact]
    public void Sbatch_errors_lose_their_prefixes()
    {
        Assert.Equal("invalid partition specified: nope; Batch job submission failed: Invalid partition name specified",
            SlurmOutput.ErrorText(Recorded("sbatch-bad-partition.stderr")));
    }

    // No slurmdbd runs here (sacct-disabled is all there is to record), so these lines follow sacct's documented
    // --parsable2 layout for the fields SlurmOutput.SacctFormat asks for: job lines, then their steps.
    [Fact]
    public void Sacct_keeps_job_lines_and_reads_their_exit_codes()
    {
        const string output = """
            41|orthancseg-t7-f0|COMPLETED|0:0|None|gpu|node3|2026-12-01T10:00:00|2026-12-01T10:00:05|2026-12-01T12:00:00
            41.batch|batch|COMPLETED|0:0||||2026-12-01T10:00:05|2026-12-01T10:00:05|2026-12-01T12:00:00
            42|orthancseg-t7-f1|CANCELLED by 0|0:15|None|gpu|None assigned|2026-12-01T10:00:00|Unknown|2026-12-01T10:01:00
            43|orthancseg-t7-f2|FAILED|2:0|NonZeroExitCode|gpu|node4|2026-12-01T10:00:00|2026-12-01T10:00:02|2026-12-01T10:00:09
            """;

        var jobs = SlurmOutput.ParseSacct(output);

        Assert.Equal([41L, 42L, 43L], jobs.Select(j => j.JobId));
        Assert.Equal((SlurmJobPhase.Succeeded, "node3"), (jobs[0].Phase, jobs[0].NodeList));
        Assert.Equal((SlurmJobPhase.Cancelled, null, 15), (jobs[1].Phase, jobs[1].NodeList, jobs[1].Signal));
        Assert.Equal((SlurmJobPhase.Failed, 2), (jobs[2].Phase, jobs[2].ExitCode));
    }

    [Fact]
    public void Unexpected_output_is_an_error_not_an_empty_answer()
    {
        Assert.Throws<FormatException>(() => SlurmOutput.ParseSqueue("1|RUNNING|None\n"));
        Assert.Throws<FormatException>(() => SlurmOutput.ParseScontrolJob("JobId=1 JobName=x\n"));
        Assert.Throws<FormatException>(() => SlurmJob.PhaseOf("EXPLODED"));
    }
}
