using OrthancSeg.Dicom;

namespace OrthancSeg.Cli.Convert;

/// <summary>The DICOM files of a folder (recursively), read in parallel and grouped by series.</summary>
internal static class SeriesFolder
{
    /// <summary>
    /// The instances of the one image series in <paramref name="folder"/>, or of <paramref name="seriesUid"/>
    /// when the folder holds several. Files that are not DICOM are skipped and counted in <paramref name="notes"/>.
    /// </summary>
    public static IReadOnlyList<DicomFile> ReadSeries(string folder, string? seriesUid, List<string> notes)
    {
        if (!Directory.Exists(folder))
        {
            throw new DicomException($"{folder} is not a folder");
        }
        var paths = Directory.GetFiles(folder, "*", SearchOption.AllDirectories);
        var files = new DicomFile?[paths.Length];
        var skipped = 0;
        Parallel.For(0, paths.Length, i =>
        {
            try
            {
                files[i] = DicomReader.ReadFile(paths[i]);
            }
            catch (DicomException)
            {
                Interlocked.Increment(ref skipped);
            }
        });
        if (skipped > 0)
        {
            notes.Add($"{skipped} file(s) in {folder} are not DICOM and were skipped");
        }
        var bySeries = files.OfType<DicomFile>()
            .Where(f => f.Dataset.Contains(DicomTags.PixelData) && !SopClasses.IsSegmentation(f.Dataset.GetString(DicomTags.SOPClassUID)))
            .GroupBy(f => f.Dataset.GetString(DicomTags.SeriesInstanceUID) ?? "(no SeriesInstanceUID)", StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        if (seriesUid is not null)
        {
            return bySeries.TryGetValue(seriesUid, out var chosen)
                ? chosen
                : throw new DicomException($"{folder} holds no images of series {seriesUid} (series found: {Describe(bySeries)})");
        }
        return bySeries.Count switch
        {
            0 => throw new DicomException($"{folder} holds no DICOM images ({paths.Length} file(s), {skipped} not DICOM)"),
            1 => bySeries.Values.Single(),
            _ => throw new DicomException($"{folder} holds {bySeries.Count} image series; choose one with --series-uid: {Describe(bySeries)}"),
        };
    }

    private static string Describe(Dictionary<string, List<DicomFile>> bySeries) =>
        string.Join("; ", bySeries.Select(s => $"{s.Key} ({s.Value.Count} images{(s.Value[0].Dataset.GetString(DicomTags.SeriesDescription) is { } d ? $", \"{d}\"" : "")})"));
}
