using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Datasets;

/// <summary>How dataset snapshots are written (section OrthancSeg:Datasets).</summary>
internal sealed class DatasetOptions
{
    public const string Section = "OrthancSeg:Datasets";

    /// <summary>
    /// The nnUNet_raw folder that receives DatasetNNN_Name/. Empty: the nnUNet_raw environment variable, else
    /// ~/.local/share/orthancseg/nnUNet_raw. The stack sets it to .stack/data/nnUNet_raw.
    /// </summary>
    public string RawRoot { get; set; } = "";

    /// <summary>Series fetched and converted at once; each holds its DICOM files and its volume in memory, so this bounds memory.</summary>
    public int SeriesInFlight { get; set; } = 2;

    /// <summary>Instance downloads in flight per series.</summary>
    public int RequestsPerSeries { get; set; } = 8;

    /// <summary>
    /// gzip level of the .nii.gz files (1 fastest … 9 smallest). 2: on a 512×512×200 CT, 10% faster than 3 for files 1.6%
    /// larger; 1 is twice as fast again but 43% larger (docs/benchmarks.md).
    /// </summary>
    public int CompressionLevel { get; set; } = 2;

    /// <summary>Attempts of an export job before its snapshot is marked failed.</summary>
    public int MaxAttempts { get; set; } = 3;


    public string ResolvedRawRoot()
    {
        if (!string.IsNullOrWhiteSpace(RawRoot))
        {
            return Path.GetFullPath(RawRoot);
        }
        if (Environment.GetEnvironmentVariable("nnUNet_raw") is { Length: > 0 } fromEnvironment)
        {
            return Path.GetFullPath(fromEnvironment);
        }
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify),
            "orthancseg", "nnUNet_raw");
    }
}

internal sealed class DatasetOptionsValidator : IValidateOptions<DatasetOptions>
{
    public ValidateOptionsResult Validate(string? name, DatasetOptions options)
    {
        var problems = new List<string>();
        if (options.SeriesInFlight is < 1 or > 32)
        {
            problems.Add($"{DatasetOptions.Section}:SeriesInFlight must be 1..32, not {options.SeriesInFlight}");
        }
        if (options.RequestsPerSeries is < 1 or > 64)
        {
            problems.Add($"{DatasetOptions.Section}:RequestsPerSeries must be 1..64, not {options.RequestsPerSeries}");
        }
        if (options.CompressionLevel is < 1 or > 9)
        {
            problems.Add($"{DatasetOptions.Section}:CompressionLevel must be 1..9, not {options.CompressionLevel}");
        }
        if (options.MaxAttempts < 1)
        {
            problems.Add($"{DatasetOptions.Section}:MaxAttempts must be at least 1, not {options.MaxAttempts}");
        }
        if (!string.IsNullOrWhiteSpace(options.RawRoot) && options.RawRoot.IndexOfAny(Path.GetInvalidPathChars()) >= 0)
        {
            problems.Add($"{DatasetOptions.Section}:RawRoot '{options.RawRoot}' is not a valid path");
        }
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
