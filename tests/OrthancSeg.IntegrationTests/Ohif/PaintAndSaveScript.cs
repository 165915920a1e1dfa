using System.Globalization;
using System.Text.Json;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Ohif;

/// <summary>What tests/e2e/ohif-paint-and-save.mjs reports: the slices OHIF showed while painting (1-based, as
/// in its "(k/N)" overlay), the STOW-RS status, the stored SEG's SOPInstanceUID and whether the study browser lists it.</summary>
internal sealed record PaintAndSaveResult(int[] ShownSlices, int[] SliceCounts, int StowStatus, string? SegSopInstanceUid, bool ListedInStudyBrowser);

/// <summary>Runs tests/e2e/ohif-paint-and-save.mjs in Debian's Chromium against an <see cref="OhifServer"/>.</summary>
internal static class PaintAndSaveScript
{
    public static async Task<PaintAndSaveResult> RunAsync(OhifServer ohif, string studyInstanceUid, int slices, int[] paintAt,
        string reportName, string artifacts, Func<string> orthancLog)
    {
        var script = Path.Combine(RepositoryPaths.EndToEnd, "ohif-paint-and-save.mjs");
        if (!Directory.Exists(Path.Combine(RepositoryPaths.EndToEnd, "node_modules", "playwright-core")))
        {
            throw new InvalidOperationException($"playwright-core is not installed in {RepositoryPaths.EndToEnd}: run `npm ci` there (make test does).");
        }
        if (Directory.Exists(artifacts))
        {
            Directory.Delete(artifacts, recursive: true);
        }
        string output;
        try
        {
            // Above the sum of the script's own step deadlines, so a slow step is reported by name, not by this cap.
            output = await ProcessRunner.RunAsync("node", [script], TimeSpan.FromMinutes(6), new Dictionary<string, string>
            {
                ["OHIF_URL"] = ohif.BaseUrl.ToString(),
                ["STUDY_UID"] = studyInstanceUid,
                ["SLICES"] = slices.ToString(CultureInfo.InvariantCulture),
                ["PAINT_AT"] = string.Join(',', paintAt),
                ["REPORT_NAME"] = reportName,
                ["ARTIFACTS"] = artifacts,
            }, RepositoryPaths.EndToEnd);
        }
        catch (InvalidOperationException exception)
        {
            throw new InvalidOperationException($"{exception.Message}\nScreenshots in {artifacts}\nOrthanc log:\n{orthancLog()}", exception);
        }
        var line = output.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("{\"painted\"", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"ohif-paint-and-save.mjs printed no result line:\n{output}");
        using var json = JsonDocument.Parse(line);
        var root = json.RootElement;
        var painted = root.GetProperty("painted").EnumerateArray().ToList();
        return new PaintAndSaveResult(
            [.. painted.Select(p => p.GetProperty("shown").GetInt32())],
            [.. painted.Select(p => p.GetProperty("of").GetInt32())],
            root.GetProperty("stowStatus").GetInt32(),
            root.GetProperty("segSopInstanceUid").GetString(),
            root.GetProperty("listedInStudyBrowser").GetBoolean());
    }
}
