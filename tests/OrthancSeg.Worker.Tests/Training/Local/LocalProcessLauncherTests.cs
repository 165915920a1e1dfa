using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Training.Local;

namespace OrthancSeg.Worker.Tests.Training.Local;

/// <summary>The launcher with real child processes: shell scripts that spawn grandchildren, wait on flag files and exit.</summary>
public sealed class LocalProcessLauncherTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private static LocalProcessLauncher Launcher(TimeSpan? grace = null) =>
        new(Options.Create(new LocalOptions { KillGracePeriod = grace ?? TimeSpan.FromSeconds(5) }), NullLogger<LocalProcessLauncher>.Instance);

    private LocalLaunchRequest Request(string script, string gpus = "1", TimeSpan? timeLimit = null, string name = "job")
    {
        var run = Path.Combine(_directory.Path, name);
        Directory.CreateDirectory(run);
        return new LocalLaunchRequest
        {
            Command = Scripts.Write(Path.Combine(run, "job.sh"), script),
            Arguments = ["first arg", "second"],
            Environment = new Dictionary<string, string> { ["nnUNet_results"] = "/data/results" },
            WorkingDirectory = run,
            RunDirectory = Path.Combine(run, "run"),
            LogPath = Path.Combine(run, "job.log"),
            Allocation = new LocalAllocation(name, gpus.Length == 0 ? [] : gpus.Split(','), 1, 100),
            TimeLimit = timeLimit,
        };
    }

    private static async Task<LocalExit> WaitAsync(LocalProcess process)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        return await process.WaitForExitAsync(deadline.Token);
    }

    private static async Task WaitForFileAsync(string path)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (!File.Exists(path) || new FileInfo(path).Length == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{path} did not appear within {Deadline}");
            await Task.Delay(20);
        }
    }

    // Dead: no such process, or a zombie waiting for a parent (here PID 1) to reap it.
    private static bool IsDead(int pid) => LocalProcess.ProcStat(pid) is null or { State: 'Z' };

    private static int[] Pids(string file) =>
        [.. File.ReadAllText(file).Split((char[])['\n', ' '], StringSplitOptions.RemoveEmptyEntries).Select(p => int.Parse(p, CultureInfo.InvariantCulture))];

    [Fact]
    public async Task A_job_sees_its_gpus_arguments_and_environment_and_its_exit_code_is_recorded()
    {
        var request = Request("""
            echo "gpus=$CUDA_VISIBLE_DEVICES order=$CUDA_DEVICE_ORDER results=$nnUNet_results args=$1|$2 cwd=$(pwd)"
            exit 7
            """, gpus: "1,3");

        var process = await Launcher().StartAsync(request, CancellationToken.None);
        var exit = await WaitAsync(process);

        Assert.Equal((LocalOutcome.Failed, 7, (int?)null), (exit.Outcome, exit.ExitCode, exit.Signal));
        Assert.Equal($"gpus=1,3 order=PCI_BUS_ID results=/data/results args=first arg|second cwd={request.WorkingDirectory}",
            (await File.ReadAllTextAsync(request.LogPath)).Trim());
        Assert.Equal("7", File.ReadAllText(process.ExitFile).Split(' ')[0]);
    }

    [Fact]
    public async Task A_cpu_job_sees_no_gpu_and_succeeds()
    {
        var request = Request("""echo "gpus=[$CUDA_VISIBLE_DEVICES]" """, gpus: "");

        var exit = await WaitAsync(await Launcher().StartAsync(request, CancellationToken.None));

        Assert.Equal((LocalOutcome.Succeeded, 0), (exit.Outcome, exit.ExitCode));
        Assert.Equal("gpus=[]", (await File.ReadAllTextAsync(request.LogPath)).Trim());
    }

    [Fact]
    public async Task Cancel_kills_the_job_and_every_process_it_started()
    {
        var pids = Path.Combine(_directory.Path, "pids");
        var request = Request($"""
            sleep 300 & echo $! >> {pids}
            sh -c 'sleep 300 & echo $! >> {pids}; wait' &
            echo $$ >> {pids}
            wait
            """);
        var process = await Launcher().StartAsync(request, CancellationToken.None);
        await ProcessesListedAsync(pids, 3);

        var exit = await process.CancelAsync(TimeSpan.FromSeconds(10), CancellationToken.None);

        Assert.Equal((LocalOutcome.Cancelled, 15), (exit.Outcome, exit.Signal));
        Assert.All(Pids(pids), pid => Assert.True(IsDead(pid), $"process {pid} survived the cancel"));
    }

    [Fact]
    public async Task A_job_that_ignores_sigterm_is_killed_after_the_grace_period()
    {
        var pids = Path.Combine(_directory.Path, "pids");
        var request = Request($"""
            trap '' TERM
            sleep 300 & echo $! >> {pids}
            echo $$ >> {pids}
            wait
            """);
        var process = await Launcher().StartAsync(request, CancellationToken.None);
        await ProcessesListedAsync(pids, 2);

        var exit = await process.CancelAsync(TimeSpan.FromMilliseconds(500), CancellationToken.None);

        Assert.Equal((LocalOutcome.Cancelled, 9), (exit.Outcome, exit.Signal));
        Assert.All(Pids(pids), pid => Assert.True(IsDead(pid), $"process {pid} survived SIGKILL"));
    }

    [Fact]
    public async Task The_time_limit_kills_an_overrunning_job_and_its_children()
    {
        var pids = Path.Combine(_directory.Path, "pids");
        var request = Request($"""
            sleep 300 & echo $! >> {pids}
            echo $$ >> {pids}
            wait
            """, timeLimit: TimeSpan.FromSeconds(1));

        var process = await Launcher().StartAsync(request, CancellationToken.None);
        var exit = await WaitAsync(process);

        Assert.Equal(LocalOutcome.TimedOut, exit.Outcome);
        Assert.True(exit.EndedAt - process.StartedAt >= TimeSpan.FromSeconds(1));
        Assert.All(Pids(pids), pid => Assert.True(IsDead(pid), $"process {pid} outlived the time limit"));
    }

    [Fact]
    public async Task A_job_that_ends_in_time_is_not_called_timed_out_even_with_exit_code_124()
    {
        var exit = await WaitAsync(await Launcher().StartAsync(Request("exit 124", timeLimit: TimeSpan.FromMinutes(5)), CancellationToken.None));

        Assert.Equal((LocalOutcome.Failed, 124), (exit.Outcome, exit.ExitCode));
    }

    [Fact]
    public async Task A_fresh_launcher_reattaches_from_the_run_directory_and_reads_the_exit_code()
    {
        var flag = Path.Combine(_directory.Path, "go");
        var request = Request($"while [ ! -e {flag} ]; do sleep 0.05; done; exit 5");
        var started = await Launcher().StartAsync(request, CancellationToken.None);

        // As after a worker restart: nothing but the run directory (and the time limit from the records).
        var attached = LocalProcessLauncher.Attach(request.RunDirectory, request.TimeLimit);

        Assert.NotNull(attached);
        Assert.Equal((started.ProcessGroupId, started.WrapperPid, started.StartedAt), (attached.ProcessGroupId, attached.WrapperPid, attached.StartedAt));
        Assert.True(attached.IsRunning);
        await File.WriteAllTextAsync(flag, "");
        var exit = await WaitAsync(attached);
        Assert.Equal((LocalOutcome.Failed, 5), (exit.Outcome, exit.ExitCode));
        Assert.False(attached.IsRunning);
        Assert.Null(LocalProcessLauncher.Attach(Path.Combine(_directory.Path, "never-started"), null));
    }

    [Fact]
    public async Task A_reattached_job_can_be_cancelled_and_reads_as_cancelled_afterwards()
    {
        var request = Request("sleep 300");
        await Launcher().StartAsync(request, CancellationToken.None);

        var exit = await LocalProcessLauncher.Attach(request.RunDirectory, null)!.CancelAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
        var later = LocalProcessLauncher.Attach(request.RunDirectory, null)!.TryReadExit();

        Assert.Equal(LocalOutcome.Cancelled, exit.Outcome);
        Assert.Equal(exit, later);
    }

    [Fact]
    public async Task A_job_whose_wrapper_vanished_without_an_exit_file_is_lost()
    {
        var request = Request("sleep 300");
        var process = await Launcher().StartAsync(request, CancellationToken.None);

        // SIGKILL to the wrapper and the job, as a reboot or an OOM kill would end them: nobody writes the exit file.
        await Signal("-KILL", process.WrapperPid);
        await Signal("-KILL", -process.ProcessGroupId);
        var exit = await WaitAsync(LocalProcessLauncher.Attach(request.RunDirectory, null)!);

        Assert.Equal(new LocalExit(LocalOutcome.Lost, null, null, null), exit);
    }

    [Fact]
    public async Task A_run_directory_is_started_once()
    {
        var request = Request("exit 0");
        await WaitAsync(await Launcher().StartAsync(request, CancellationToken.None));

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => Launcher().StartAsync(request, CancellationToken.None));

        Assert.Contains("attach to it instead", e.Message, StringComparison.Ordinal);
        Assert.True(LocalProcessLauncher.WasLaunched(request.RunDirectory));
        Assert.False(LocalProcessLauncher.WasLaunched(Path.Combine(_directory.Path, "never-started")));
    }

    [Fact]
    public async Task A_start_interrupted_before_its_pid_file_is_never_repeated_in_the_same_directory()
    {
        var request = Request("exit 0");
        Directory.CreateDirectory(request.RunDirectory);
        // What a worker that died between marking and starting leaves behind.
        await File.WriteAllTextAsync(Path.Combine(request.RunDirectory, LocalProcessLauncher.LaunchedFileName), "");

        await Assert.ThrowsAsync<InvalidOperationException>(() => Launcher().StartAsync(request, CancellationToken.None));

        Assert.Null(LocalProcessLauncher.Attach(request.RunDirectory, null));
        Assert.True(LocalProcessLauncher.WasLaunched(request.RunDirectory));
    }

    private static async Task ProcessesListedAsync(string file, int count)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (!File.Exists(file) || Pids(file).Length < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{file} did not list {count} processes within {Deadline}");
            await Task.Delay(20);
        }
    }

    private static async Task Signal(string signal, int pid)
    {
        using var kill = System.Diagnostics.Process.Start("kill", [signal, "--", pid.ToString(CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
    }
}
