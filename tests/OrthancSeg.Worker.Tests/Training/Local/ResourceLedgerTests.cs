using OrthancSeg.Worker.Training.Local;

namespace OrthancSeg.Worker.Tests.Training.Local;

public sealed class ResourceLedgerTests
{
    private static ResourceLedger TwoGpuMachine() => new(new LocalCapacity(["0", "1"], Cpus: 16, MemoryMiB: 64_000));

    [Fact]
    public async Task Five_one_gpu_jobs_run_two_at_a_time_each_on_its_own_gpu()
    {
        var ledger = TwoGpuMachine();
        var request = new LocalRequest(1, 4, 8_000);

        var admissions = Enumerable.Range(0, 5).Select(i => ledger.AdmitAsync($"fold-{i}", request, CancellationToken.None)).ToList();
        var running = admissions.Where(a => a.IsCompletedSuccessfully).Select(a => a.Result).ToList();

        Assert.Equal(2, running.Count);
        Assert.Equal(["0", "1"], running.Select(a => a.CudaVisibleDevices).Order());
        Assert.Equal(3, ledger.WaitingCount);

        var finishedGpu = running[0].CudaVisibleDevices;
        var waiting = admissions.Where(a => !a.IsCompleted).ToList();
        ledger.Release(running[0].JobKey);
        var third = await await Task.WhenAny(waiting).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(finishedGpu, third.CudaVisibleDevices);
        Assert.Equal(2, ledger.Admitted.Count);
        Assert.Equal(2, ledger.WaitingCount);
        Assert.Equal(ledger.Admitted.Count, ledger.Admitted.Select(a => a.CudaVisibleDevices).Distinct().Count());
    }

    [Fact]
    public void Cpus_and_memory_are_summed_against_the_capacity()
    {
        var ledger = TwoGpuMachine();

        var big = ledger.TryAdmit("big", new LocalRequest(0, 12, 10_000));
        var tooManyCpus = ledger.TryAdmit("cpus", new LocalRequest(0, 5, 1_000));
        var tooMuchMemory = ledger.TryAdmit("memory", new LocalRequest(0, 4, 60_000));
        var fits = ledger.TryAdmit("fits", new LocalRequest(0, 4, 54_000));

        Assert.NotNull(big);
        Assert.Null(tooManyCpus);
        Assert.Null(tooMuchMemory);
        Assert.Equal("", fits?.CudaVisibleDevices);
    }

    [Theory]
    [InlineData(3, 1, 1, "3 GPU(s) asked but this machine has 2 (0, 1)")]
    [InlineData(1, 17, 1, "17 CPU(s) asked but the local backend has 16")]
    [InlineData(0, 1, 70_000, "70000 MiB asked but the local backend has 64000 MiB")]
    [InlineData(3, 32, 1, "3 GPU(s) asked but this machine has 2 (0, 1); 32 CPU(s) asked but the local backend has 16")]
    public void A_request_larger_than_the_machine_is_refused_at_once_with_the_reason(int gpus, int cpus, long memory, string reason)
    {
        var ledger = TwoGpuMachine();

        var e = Assert.Throws<LocalRequestRefusedException>(() => ledger.TryAdmit("x", new LocalRequest(gpus, cpus, memory)));
        var waiting = Assert.ThrowsAsync<LocalRequestRefusedException>(() => ledger.AdmitAsync("y", new LocalRequest(gpus, cpus, memory), CancellationToken.None));

        Assert.Equal(reason, e.Message);
        Assert.True(waiting.IsCompleted);
        Assert.Equal(0, ledger.WaitingCount);
    }

    [Fact]
    public void A_machine_without_gpus_says_to_ask_for_none()
    {
        var ledger = new ResourceLedger(new LocalCapacity([], 2, 4_000));

        Assert.Equal("1 GPU(s) asked but this machine has none (ask for 0 GPUs to train on CPU)", ledger.WhyItCanNeverFit(new LocalRequest(1, 1, 100)));
        Assert.Null(ledger.WhyItCanNeverFit(new LocalRequest(0, 2, 4_000)));
    }

    [Fact]
    public void A_smaller_job_runs_before_a_larger_one_that_waits()
    {
        var ledger = TwoGpuMachine();
        ledger.TryAdmit("one-gpu", new LocalRequest(1, 1, 1));

        var twoGpus = ledger.AdmitAsync("two-gpus", new LocalRequest(2, 1, 1), CancellationToken.None);
        var oneGpu = ledger.TryAdmit("another", new LocalRequest(1, 1, 1));

        Assert.False(twoGpus.IsCompleted);
        Assert.Equal("1", oneGpu?.CudaVisibleDevices);
    }

    [Fact]
    public async Task Giving_up_a_wait_leaves_the_queue_and_lets_the_next_in()
    {
        var ledger = TwoGpuMachine();
        ledger.TryAdmit("a", new LocalRequest(2, 1, 1));
        using var cancel = new CancellationTokenSource();

        var abandoned = ledger.AdmitAsync("b", new LocalRequest(2, 1, 1), cancel.Token);
        var next = ledger.AdmitAsync("c", new LocalRequest(1, 1, 1), CancellationToken.None);
        await cancel.CancelAsync();
        ledger.Release("a");

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);
        Assert.Equal("c", (await next).JobKey);
        Assert.Equal(0, ledger.WaitingCount);
    }

    [Fact]
    public void Restored_allocations_keep_their_gpus_from_new_jobs()
    {
        var ledger = TwoGpuMachine();
        ledger.Restore(new LocalAllocation("running-before-restart", ["1"], 4, 8_000));

        var next = ledger.TryAdmit("new", new LocalRequest(1, 1, 1));
        var none = ledger.TryAdmit("newer", new LocalRequest(1, 1, 1));

        Assert.Equal("0", next?.CudaVisibleDevices);
        Assert.Null(none);
        Assert.Throws<InvalidOperationException>(() => ledger.Restore(new LocalAllocation("clash", ["0"], 1, 1)));
    }

    [Fact]
    public void Admitting_the_same_job_twice_returns_its_allocation()
    {
        var ledger = TwoGpuMachine();

        var first = ledger.TryAdmit("fold-0", new LocalRequest(1, 1, 1));
        var again = ledger.TryAdmit("fold-0", new LocalRequest(1, 1, 1));

        Assert.Same(first, again);
        Assert.Single(ledger.Admitted);
    }

    [Fact]
    public async Task Waiting_twice_for_the_same_job_queues_it_once()
    {
        var ledger = TwoGpuMachine();
        ledger.TryAdmit("a", new LocalRequest(2, 1, 1));

        var first = ledger.AdmitAsync("b", new LocalRequest(1, 1, 1), CancellationToken.None);
        var second = ledger.AdmitAsync("b", new LocalRequest(1, 1, 1), CancellationToken.None);
        Assert.Equal(1, ledger.WaitingCount);
        ledger.Release("a");

        Assert.Same(await first, await second);
        Assert.Single(ledger.Admitted);
    }
}
