extern alias WorkerHost;

using Microsoft.Extensions.Options;
using OrthancSeg.IntegrationTests.Fixtures;
using WorkerHost::OrthancSeg.Worker.Training;

namespace OrthancSeg.IntegrationTests.Training;

/// <summary>
/// The nnU-Net stand-ins in tests/nnunet-standin and a tiny raw dataset for them, in a temporary folder that holds
/// nnUNet_raw, nnUNet_preprocessed and nnUNet_results.
/// </summary>
internal sealed class NnUnetStandIn : IDisposable
{
    public const int DatasetId = 42;
    public const string DatasetName = "Tiny";

    private NnUnetStandIn(string root, IReadOnlyList<string> cases)
    {
        Root = root;
        Cases = cases;
    }

    public static string BinDirectory => Path.Combine(RepositoryPaths.Root, "tests", "nnunet-standin");

    public string Root { get; }

    public IReadOnlyList<string> Cases { get; }

    public NnUnetPaths Paths => new(Path.Combine(Root, "nnUNet_raw"), Path.Combine(Root, "nnUNet_preprocessed"), Path.Combine(Root, "nnUNet_results"));

    public static NnUnetModelSpec Model => new(DatasetId, DatasetName, "3d_fullres");

    /// <summary>Where every stand-in invocation appends a JSON line (argv, CUDA_VISIBLE_DEVICES, pid, start time).</summary>
    public string RecordFile => Path.Combine(Root, "invocations.jsonl");

    /// <summary>A folder (made readable by all, for Slurm's job user) with a raw dataset of <paramref name="cases"/> cases.</summary>
    public static async Task<NnUnetStandIn> CreateAsync(string parent, int cases = 6)
    {
        var root = Path.Combine(parent, "nnunet-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        var output = await ProcessRunner.RunAsync("/usr/bin/python3",
            [Path.Combine(BinDirectory, "make_tiny_dataset.py"), Path.Combine(root, "nnUNet_raw"), $"{DatasetId}", DatasetName, $"{cases}"], TimeSpan.FromSeconds(60));
        return new NnUnetStandIn(root, output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    /// <summary>The command builder as a site configures it for the stand-ins: their folder as BinDirectory, their knobs as environment.</summary>
    public NnUnetCommands Commands(int epochs = 2, double stepSeconds = 0.2, string? failFold = null)
    {
        var environment = new Dictionary<string, string>
        {
            ["ORTHANCSEG_STANDIN_EPOCHS"] = $"{epochs}",
            ["ORTHANCSEG_STANDIN_STEP_SECONDS"] = stepSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["ORTHANCSEG_STANDIN_RECORD"] = RecordFile,
        };
        if (failFold is not null)
        {
            environment["ORTHANCSEG_STANDIN_FAIL_FOLD"] = failFold;
        }
        return new NnUnetCommands(Options.Create(new NnUnetOptions { BinDirectory = BinDirectory, Environment = environment }));
    }

    /// <summary>The recorded invocations, in order.</summary>
    public IReadOnlyList<System.Text.Json.JsonElement> Invocations() =>
        File.Exists(RecordFile)
            ? [.. File.ReadAllLines(RecordFile).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.Clone())]
            : [];

    public void Dispose() => Directory.Delete(Root, recursive: true);
}
