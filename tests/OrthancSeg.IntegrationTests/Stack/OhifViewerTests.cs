using System.Globalization;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Stack;

[Collection(OrthancCollection.Name)]
public sealed class OhifViewerTests(OrthancServer orthanc)
{
    private const int Slices = 12;

    [Fact]
    public async Task Uploaded_CT_series_shows_in_the_OHIF_study_list_and_renders_in_the_viewer()
    {
        using var series = await CtSeries.CreateAsync(Slices);
        await orthanc.UploadAsync(series.Files);
        await using var ohif = await OhifServer.StartAsync(orthanc);

        var screenshot = Path.Combine(RepositoryPaths.Artifacts, "ohif-viewer.png");
        File.Delete(screenshot);
        var output = await RunBrowserAsync(new Dictionary<string, string>
        {
            ["OHIF_URL"] = ohif.BaseUrl.ToString(),
            ["STUDY_UID"] = series.StudyInstanceUid,
            ["PATIENT_ID"] = series.PatientId,
            ["STUDY_DESCRIPTION"] = series.StudyDescription,
            ["SLICES"] = Slices.ToString(CultureInfo.InvariantCulture),
            ["SCREENSHOT"] = screenshot,
        });

        Assert.Contains($"/{Slices})", output, StringComparison.Ordinal);
        Assert.True(File.Exists(screenshot), $"no screenshot at {screenshot}");
    }

    private async Task<string> RunBrowserAsync(Dictionary<string, string> environment)
    {
        var script = Path.Combine(RepositoryPaths.EndToEnd, "ohif-study-opens.mjs");
        if (!Directory.Exists(Path.Combine(RepositoryPaths.EndToEnd, "node_modules", "playwright-core")))
        {
            throw new InvalidOperationException($"playwright-core is not installed in {RepositoryPaths.EndToEnd}: run `npm ci` there (make test does).");
        }
        try
        {
            return await ProcessRunner.RunAsync("node", [script], TimeSpan.FromMinutes(4), environment, RepositoryPaths.EndToEnd);
        }
        catch (InvalidOperationException exception)
        {
            throw new InvalidOperationException($"{exception.Message}\nOrthanc log:\n{orthanc.LogTail()}", exception);
        }
    }
}
