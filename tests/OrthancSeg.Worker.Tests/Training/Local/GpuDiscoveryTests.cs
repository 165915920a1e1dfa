using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Training.Local;

namespace OrthancSeg.Worker.Tests.Training.Local;

public sealed class GpuDiscoveryTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    // No NVIDIA GPU or driver on the machines this was written on, so the lines follow nvidia-smi's documented
    // `--format=csv,noheader` output for the queried fields (memory with its unit; `nounits` drops it).
    private const string TwoGpus = """
        0, GPU-5d0e2c4a-31a9-8f3b-0b2e-7c1c3b0d9a11, NVIDIA A100-SXM4-40GB, 40960 MiB
        1, GPU-8a7f3e10-9b44-c0de-4e1f-2d6b5a4c3e22, NVIDIA A100-SXM4-40GB, 40960 MiB
        """;

    [Fact]
    public void Nvidia_smi_lines_become_gpus_with_index_uuid_name_and_memory()
    {
        var gpus = GpuDiscovery.ParseNvidiaSmi(TwoGpus);

        Assert.Equal(2, gpus.Count);
        Assert.Equal(new LocalGpu("1", "GPU-8a7f3e10-9b44-c0de-4e1f-2d6b5a4c3e22", "NVIDIA A100-SXM4-40GB", 40960), gpus[1]);
        Assert.Equal(24576, GpuDiscovery.ParseNvidiaSmi("0, GPU-x, Quadro RTX 6000, Rev. 2, 24576").Single().MemoryMiB);
        Assert.Throws<FormatException>(() => GpuDiscovery.ParseNvidiaSmi("No devices were found"));
    }

    [Fact]
    public async Task Discovery_asks_nvidia_smi_for_exactly_the_fields_it_parses()
    {
        var smi = FakeNvidiaSmi($$"""
            [ "$1" = "{{GpuDiscovery.QueryArguments}}" ] && [ "$2" = "--format=csv,noheader" ] || { echo "bad arguments: $*" >&2; exit 2; }
            cat <<'OUT'
            {{TwoGpus}}
            OUT
            """);

        var gpus = await Discovery(new LocalOptions { NvidiaSmi = smi }).DiscoverAsync(CancellationToken.None);

        Assert.Equal(["0", "1"], gpus.Select(g => g.Id));
    }

    [Fact]
    public async Task A_broken_driver_is_an_error_not_a_machine_without_gpus()
    {
        var smi = FakeNvidiaSmi("""
            echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."
            exit 9
            """);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => Discovery(new LocalOptions { NvidiaSmi = smi }).DiscoverAsync(CancellationToken.None));

        Assert.Contains("couldn't communicate with the NVIDIA driver", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_nvidia_smi_the_machine_has_no_gpus_and_a_configured_list_wins()
    {
        var missing = await Discovery(new LocalOptions { NvidiaSmi = Path.Combine(_directory.Path, "absent") }).DiscoverAsync(CancellationToken.None);
        var configured = await Discovery(new LocalOptions { Gpus = ["2", "3"], NvidiaSmi = Path.Combine(_directory.Path, "absent") })
            .DiscoverAsync(CancellationToken.None);

        Assert.Empty(missing);
        Assert.Equal(["2", "3"], configured.Select(g => g.Id));
    }

    private static GpuDiscovery Discovery(LocalOptions options) => new(Options.Create(options));

    private string FakeNvidiaSmi(string body) => Scripts.Write(Path.Combine(_directory.Path, "nvidia-smi"), body);
}
