namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>A small synthetic CT series on disk, written by make_ct_series.py (pydicom).</summary>
internal sealed class CtSeries : IDisposable
{
    private CtSeries(string directory, string patientId, string studyDescription, string studyInstanceUid, string seriesInstanceUid)
    {
        Directory = directory;
        PatientId = patientId;
        StudyDescription = studyDescription;
        StudyInstanceUid = studyInstanceUid;
        SeriesInstanceUid = seriesInstanceUid;
    }

    public string Directory { get; }

    public string PatientId { get; }

    public string StudyDescription { get; }

    public string StudyInstanceUid { get; }

    public string SeriesInstanceUid { get; }

    public IReadOnlyList<string> Files => [.. System.IO.Directory.GetFiles(Directory, "*.dcm").Order(StringComparer.Ordinal)];

    public static async Task<CtSeries> CreateAsync(int slices, int size = 64)
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        var directory = Path.Combine(Path.GetTempPath(), "orthancseg-ct-" + tag);
        var patientId = "OSEG-" + tag.ToUpperInvariant();
        var description = "Phantom " + tag;
        var script = Path.Combine(RepositoryPaths.Root, "tests", "OrthancSeg.IntegrationTests", "Fixtures", "make_ct_series.py");
        var output = await ProcessRunner.RunAsync("/usr/bin/python3", [script, directory, slices.ToString(System.Globalization.CultureInfo.InvariantCulture), patientId, description, size.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(60));
        var uids = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return new CtSeries(directory, patientId, description, uids[0], uids[1]);
    }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}
