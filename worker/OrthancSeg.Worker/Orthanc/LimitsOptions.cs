using Microsoft.Extensions.Options;
using OrthancSeg.Dicom;

namespace OrthancSeg.Worker.Orthanc;

/// <summary>
/// How much one DICOM file or series may make the worker allocate (section OrthancSeg:Limits). Sizes in DICOM tags are the
/// sender's claims; these caps are checked against them before any buffer is made, so a small hostile file is refused with a
/// reason (a rejected label, a case left out of a dataset) instead of asking the worker for gigabytes.
/// </summary>
internal sealed class LimitsOptions
{
    public const string Section = "OrthancSeg:Limits";

    /// <summary>Largest image volume or label map, Rows × Columns × slices × bytes per voxel (2 for int16, 4 for float32). Default 2 GiB.</summary>
    public long MaxVolumeBytes { get; set; } = DicomLimits.DefaultMaxVolumeBytes;

    /// <summary>Largest data set a deflated-transfer-syntax file may inflate to. Default 1 GiB.</summary>
    public long MaxInflatedBytes { get; set; } = DicomLimits.DefaultMaxInflatedBytes;

    public DicomLimits ToDicomLimits() => new() { MaxVolumeBytes = MaxVolumeBytes, MaxInflatedBytes = MaxInflatedBytes };
}

internal sealed class LimitsOptionsValidator : IValidateOptions<LimitsOptions>
{
    // Below 1 MiB not even a small CT slice stack fits; above 2 GiB one buffer cannot hold it (the codec also stops at Array.MaxLength).
    private const long Floor = 1L << 20;
    private const long Ceiling = 2L << 30;

    public ValidateOptionsResult Validate(string? name, LimitsOptions options)
    {
        var problems = new List<string>();
        if (options.MaxVolumeBytes < Floor || options.MaxVolumeBytes > Ceiling)
        {
            problems.Add($"{LimitsOptions.Section}:MaxVolumeBytes must be {Floor}..{Ceiling}, not {options.MaxVolumeBytes}");
        }
        if (options.MaxInflatedBytes < Floor || options.MaxInflatedBytes > Ceiling)
        {
            problems.Add($"{LimitsOptions.Section}:MaxInflatedBytes must be {Floor}..{Ceiling}, not {options.MaxInflatedBytes}");
        }
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
