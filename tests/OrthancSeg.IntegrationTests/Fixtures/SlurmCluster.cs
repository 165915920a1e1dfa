using System.Globalization;

namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>
/// A throwaway one-node Slurm cluster from Debian's slurm-wlm and munge, everything in a temporary directory
/// (the configuration observed to work in ../shared/reference/slurm.md): its own munged with its own key and
/// socket (AuthInfo=socket=…), slurmctld and slurmd on their own loopback ports, and two fake GPUs (character
/// devices made with mknod, listed in gres.conf) so that --gres=gpu:N is really scheduled and each job gets its
/// own CUDA_VISIBLE_DEVICES. The daemons run in the foreground under <see cref="BackgroundProcess"/>; disposing
/// cancels every job (running jobs survive a controller shutdown), shuts the daemons down and removes the directory.
/// </summary>
public sealed class SlurmCluster : IAsyncLifetime
{
    public const string NodeName = "fxnode";
    public const string Partition = "debug";
    public const int Gpus = 2;
    public const int MemoryMiB = 1000;

    private readonly List<BackgroundProcess> _daemons = [];
    private BackgroundProcess? _munged;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("orthancseg-slurm-").FullName;

    public string ConfigFile => Path.Combine(Directory, "etc", "slurm.conf");

    /// <summary>Where tests put job scripts, logs and flag files.</summary>
    public string JobsDirectory => Path.Combine(Directory, "jobs");

    public int Cpus { get; } = Environment.ProcessorCount;

    public static bool IsInstalled => new[] { "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "/usr/bin/sbatch" }.All(File.Exists);

    public async Task InitializeAsync()
    {
        if (!IsInstalled)
        {
            throw new InvalidOperationException("Slurm and munge are not installed (apt-get install slurm-wlm munge); run `make test`, which installs them");
        }
        // munged refuses a socket directory that is not executable by all (mktemp-style directories are 0700).
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }
        foreach (var folder in new[] { "munge", "etc", "run", "log", "dev", "jobs" })
        {
            System.IO.Directory.CreateDirectory(Path.Combine(Directory, folder));
        }
        var munge = Path.Combine(Directory, "munge");
        await ProcessRunner.RunAsync("mungekey", ["--create", $"--keyfile={munge}/munge.key"], TimeSpan.FromSeconds(30));
        _munged = BackgroundProcess.Start("munged", ["--foreground", $"--key-file={munge}/munge.key", $"--socket={munge}/munge.sock",
            $"--pid-file={munge}/munged.pid", $"--log-file={munge}/munged.log", $"--seed-file={munge}/munged.seed"], Path.Combine(Directory, "log", "munged.out"));
        await _munged.WaitUntilReadyAsync(() => Task.FromResult(File.Exists($"{munge}/munge.sock")), TimeSpan.FromSeconds(20), "munged");

        await MakeFakeGpusAsync();
        var ports = ProcessRunner.FreePorts(2);
        await File.WriteAllTextAsync(ConfigFile, Config(ports[0], ports[1]));
        await File.WriteAllTextAsync(Path.Combine(Directory, "etc", "gres.conf"),
            string.Concat(Enumerable.Range(0, Gpus).Select(i => $"Name=gpu File={Directory}/dev/nvidia{i}\n")));

        var environment = new Dictionary<string, string> { ["SLURM_CONF"] = ConfigFile };
        _daemons.Add(BackgroundProcess.Start("slurmctld", ["-D", "-f", ConfigFile], Path.Combine(Directory, "log", "slurmctld.out"), environment));
        _daemons.Add(BackgroundProcess.Start("slurmd", ["-D", "-f", ConfigFile, "-N", NodeName], Path.Combine(Directory, "log", "slurmd.out"), environment));
        await _daemons[1].WaitUntilReadyAsync(async () =>
        {
            if (_daemons[0].HasExited)
            {
                throw new InvalidOperationException($"slurmctld exited while starting:\n{_daemons[0].LogTail()}");
            }
            return (await RunAsync("sinfo", ["--noheader", "--Node", "--format=%T"])).Trim() == "idle";
        }, TimeSpan.FromSeconds(60), "the Slurm node to become idle");
    }

    /// <summary>Runs a Slurm client command against this cluster; returns its output, or "" when it fails.</summary>
    public async Task<string> RunAsync(string command, IEnumerable<string> arguments)
    {
        try
        {
            return await ProcessRunner.RunAsync(command, arguments, TimeSpan.FromSeconds(30), new Dictionary<string, string> { ["SLURM_CONF"] = ConfigFile });
        }
        catch (InvalidOperationException)
        {
            return "";
        }
    }

    /// <summary>
    /// A copy of this cluster's configuration whose controller port nobody listens on: clients using it meet a
    /// controller that is down, without taking this cluster down for the other tests.
    /// </summary>
    public string WriteUnreachableConfig()
    {
        var path = Path.Combine(Directory, "etc-down", "slurm.conf");
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var ports = ProcessRunner.FreePorts(2);
        File.WriteAllText(path, Config(ports[0], ports[1]));
        return path;
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (_daemons.Count == 2 && !_daemons[0].HasExited)
            {
                // Jobs outlive a shutdown of the daemons (slurm.md), so every job is cancelled and gone first.
                foreach (var id in (await RunAsync("squeue", ["--noheader", "--format=%i"])).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    await RunAsync("scancel", [id]);
                }
                await ProcessRunner.WaitUntilAsync(async () => (await RunAsync("squeue", ["--noheader", "--format=%i"])).Trim().Length == 0,
                    TimeSpan.FromSeconds(30), "every Slurm job to end");
                await RunAsync("scontrol", ["shutdown"]);
                await ProcessRunner.WaitUntilAsync(() => Task.FromResult(_daemons.All(d => d.HasExited)), TimeSpan.FromSeconds(30), "slurmctld and slurmd to stop");
            }
        }
        finally
        {
            foreach (var daemon in _daemons)
            {
                await daemon.DisposeAsync();
            }
            if (_munged is not null)
            {
                await _munged.DisposeAsync();
            }
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }

    private async Task MakeFakeGpusAsync()
    {
        for (var i = 0; i < Gpus; i++)
        {
            var device = Path.Combine(Directory, "dev", $"nvidia{i}");
            if (Environment.UserName == "root")
            {
                // Character devices (NVIDIA's major 195): with regular files slurmd schedules the GPUs but sets no CUDA_VISIBLE_DEVICES.
                await ProcessRunner.RunAsync("mknod", [device, "c", "195", i.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10));
            }
            else
            {
                // Without root no mknod; symlinks to /dev/null were observed to work the same.
                File.CreateSymbolicLink(device, "/dev/null");
            }
        }
    }

    private string Config(int controllerPort, int nodePort) => $"""
        ClusterName=orthancseg
        SlurmctldHost=localhost
        SlurmctldPort={controllerPort}
        SlurmdPort={nodePort}
        AuthType=auth/munge
        AuthInfo=socket={Directory}/munge/munge.sock
        SlurmUser={Environment.UserName}
        SlurmdUser={Environment.UserName}
        StateSaveLocation={Directory}/state
        SlurmdSpoolDir={Directory}/spool
        SlurmctldPidFile={Directory}/run/slurmctld.pid
        SlurmdPidFile={Directory}/run/slurmd.pid
        SlurmctldLogFile={Directory}/log/slurmctld.log
        SlurmdLogFile={Directory}/log/slurmd.log
        ProctrackType=proctrack/linuxproc
        TaskPlugin=task/none
        JobAcctGatherType=jobacct_gather/none
        AccountingStorageType=accounting_storage/none
        MailProg=/bin/true
        MpiDefault=none
        ReturnToService=2
        SelectType=select/cons_tres
        SelectTypeParameters=CR_Core_Memory
        GresTypes=gpu
        NodeName={NodeName} NodeAddr=127.0.0.1 CPUs={Cpus} RealMemory={MemoryMiB} Gres=gpu:{Gpus} State=UNKNOWN
        PartitionName={Partition} Nodes={NodeName} Default=YES MaxTime=INFINITE State=UP
        CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
        DependencyParameters=kill_invalid_depend
        MessageTimeout=3

        """;
}

[CollectionDefinition(Name)]
public sealed class SlurmCollection : ICollectionFixture<SlurmCluster>
{
    public const string Name = "Slurm";
}
