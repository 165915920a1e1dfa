using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Cases;

/// <summary>How the worker records series and segmentations (section OrthancSeg:Records).</summary>
internal sealed class RecordingOptions
{
    public const string Section = "OrthancSeg:Records";

    /// <summary>The pool of job slots the recording kinds (series, segmentation, backfill) share; its size is <see cref="Concurrency"/>.</summary>
    public const string Pool = "recording";

    /// <summary>How often Orthanc's /changes log is read for events the bridge did not deliver.</summary>
    public TimeSpan CatchUpInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Changes read per /changes request.</summary>
    public int ChangesPageSize { get; set; } = 1000;

    /// <summary>
    /// How long after a NewSeries change the series is checked for stability. Orthanc keeps stability in memory,
    /// so after a restart a series may never be announced as stable; this check records it anyway.
    /// </summary>
    public TimeSpan NewSeriesCheckDelay { get; set; } = TimeSpan.FromSeconds(90);

    /// <summary>Jobs run at once by this worker.</summary>
    public int Concurrency { get; set; } = 4;

}

internal sealed class RecordingOptionsValidator : IValidateOptions<RecordingOptions>
{
    public ValidateOptionsResult Validate(string? name, RecordingOptions options)
    {
        var problems = new List<string>();
        if (options.CatchUpInterval <= TimeSpan.Zero)
        {
            problems.Add($"{RecordingOptions.Section}:CatchUpInterval must be positive, not {options.CatchUpInterval}");
        }
        if (options.ChangesPageSize is < 1 or > 10000)
        {
            problems.Add($"{RecordingOptions.Section}:ChangesPageSize must be 1..10000, not {options.ChangesPageSize}");
        }
        if (options.NewSeriesCheckDelay < TimeSpan.Zero)
        {
            problems.Add($"{RecordingOptions.Section}:NewSeriesCheckDelay must not be negative, not {options.NewSeriesCheckDelay}");
        }
        if (options.Concurrency is < 1 or > 64)
        {
            problems.Add($"{RecordingOptions.Section}:Concurrency must be 1..64, not {options.Concurrency}");
        }
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
