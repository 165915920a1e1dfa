using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
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

    [Fact]
    public async Task Instances_stored_by_STOW_through_the_viewers_origin_reach_Orthanc()
    {
        // OHIF saves a segmentation with STOW-RS to /dicom-web/studies on its own origin: nginx must pass the
        // request on with Orthanc's credentials and without its 1 MB default body limit (3 x 512 KB here).
        using var series = await CtSeries.CreateAsync(slices: 3, size: 512);
        await using var ohif = await OhifServer.StartAsync(orthanc);
        using var body = new MultipartContent("related", "orthancseg-boundary");
        body.Headers.ContentType!.Parameters.Add(new NameValueHeaderValue("type", "\"application/dicom\""));
        foreach (var file in series.Files)
        {
            var part = new ByteArrayContent(await File.ReadAllBytesAsync(file));
            part.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
            body.Add(part);
        }

        using var browser = new HttpClient { BaseAddress = ohif.BaseUrl };
        using var response = await browser.PostAsync(new Uri("dicom-web/studies", UriKind.Relative), body);

        Assert.True(response.StatusCode == HttpStatusCode.OK, $"STOW through nginx answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        using var client = orthanc.CreateClient();
        using var lookup = await client.PostAsync(new Uri("tools/lookup", UriKind.Relative), new StringContent(series.SeriesInstanceUid));
        using var found = JsonDocument.Parse(await lookup.Content.ReadAsStringAsync());
        var seriesId = Assert.Single(found.RootElement.EnumerateArray()).GetProperty("ID").GetString();
        using var stored = JsonDocument.Parse(await client.GetStringAsync(new Uri($"series/{seriesId}", UriKind.Relative)));
        Assert.Equal(3, stored.RootElement.GetProperty("Instances").GetArrayLength());
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
            return await ProcessRunner.RunAsync("node", [script], TimeSpan.FromMinutes(6), environment, RepositoryPaths.EndToEnd);
        }
        catch (InvalidOperationException exception)
        {
            throw new InvalidOperationException($"{exception.Message}\nOrthanc log:\n{orthanc.LogTail()}", exception);
        }
    }
}
