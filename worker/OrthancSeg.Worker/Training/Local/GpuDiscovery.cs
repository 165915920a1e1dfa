using System.Globalization;
using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Training.Local;

/// <summary>One GPU a job can be given; <see cref="Id"/> is what goes into CUDA_VISIBLE_DEVICES.</summary>
internal sealed record LocalGpu(string Id, string? Uuid = null, string? Name = null, long? MemoryMiB = null);

/// <summary>Finds the GPUs the local backend hands out: the configured list, else what nvidia-smi lists.</summary>
internal sealed class GpuDiscovery(IOptions<LocalOptions> options)
{
    public const string QueryArguments = "--query-gpu=index,uuid,name,memory.total";

    /// <summary>
    /// The GPUs. No nvidia-smi at all means a machine without NVIDIA GPUs (an empty list); an nvidia-smi that fails
    /// (driver not loaded, version mismatch) is an error with its output, not "no GPUs", so a GPU machine with a
    /// broken driver does not quietly train on CPU.
    /// </summary>
    public async Task<IReadOnlyList<LocalGpu>> DiscoverAsync(CancellationToken cancellationToken)
    {
        var configured = options.Value.Gpus;
        if (configured.Count > 0)
        {
            return [.. configured.Select(id => new LocalGpu(id))];
        }
        ToolResult result;
        try
        {
            result = await ToolRunner.RunAsync(options.Value.NvidiaSmi, [QueryArguments, "--format=csv,noheader"], TimeSpan.FromSeconds(30),
                cancellationToken: cancellationToken);
        }
        catch (ToolRunException e) when (!e.TimedOut)
        {
            return [];
        }
        return result.Succeeded
            ? ParseNvidiaSmi(result.StandardOutput)
            : throw new InvalidOperationException($"nvidia-smi exited with {result.ExitCode}: {result.Output} "
                + $"(fix the driver, or list the GPUs in {LocalOptions.Section}:Gpus)");
    }

    /// <summary>
    /// `nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader[,nounits]`:
    /// "0, GPU-5d0e…, NVIDIA A100-SXM4-40GB, 40960 MiB" per line.
    /// </summary>
    public static IReadOnlyList<LocalGpu> ParseNvidiaSmi(string output)
    {
        var gpus = new List<LocalGpu>();
        foreach (var line in output.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0))
        {
            var f = line.Split(',').Select(p => p.Trim()).ToArray();
            // A GPU name may itself hold a comma; index and uuid lead and memory ends the line.
            if (f.Length < 4 || !int.TryParse(f[0], NumberStyles.None, CultureInfo.InvariantCulture, out var index)
                || !long.TryParse(f[^1].Replace("MiB", "", StringComparison.Ordinal).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var memory))
            {
                throw new FormatException($"nvidia-smi line '{line}' is not 'index, uuid, name, memory.total'");
            }
            gpus.Add(new LocalGpu(index.ToString(CultureInfo.InvariantCulture), f[1], string.Join(", ", f[2..^1]), memory));
        }
        return gpus;
    }
}
