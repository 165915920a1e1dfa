using System.Globalization;
using System.Text.Json;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Stack;

/// <summary>
/// Orthanc's DICOM port, configured as `make up` configures it: only the modalities the operator declared
/// (.stack/modalities.json; the fixture declares <see cref="OrthancServer.DeclaredModalityAet"/> at 127.0.0.1) may store,
/// and only when they call Orthanc by its own AE title; C-ECHO answers anyone. Driven by dcmtk's storescu and echoscu,
/// as a scanner or a rogue sender on the network would.
/// </summary>
[Collection(OrthancCollection.Name)]
public sealed class DicomAccessTests(OrthancServer orthanc)
{
    [Fact]
    public async Task A_declared_modality_calling_Orthanc_by_its_AE_title_stores_over_DICOM()
    {
        using var series = await CtSeries.CreateAsync(slices: 1);

        await StoreScuAsync(OrthancServer.DeclaredModalityAet, OrthancServer.Aet, series.Files[0]);

        Assert.True(await IsStoredAsync(series), "the declared modality's image is not in Orthanc");
    }

    [Fact]
    public async Task An_unknown_calling_AE_title_is_refused_and_nothing_is_stored()
    {
        using var series = await CtSeries.CreateAsync(slices: 1);

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => StoreScuAsync("ROGUE", OrthancServer.Aet, series.Files[0]));

        Assert.Contains("storescu", refused.Message, StringComparison.Ordinal);
        Assert.False(await IsStoredAsync(series), "an image sent under an undeclared AE title was stored");
    }

    [Fact]
    public async Task A_declared_modality_calling_another_AE_title_is_refused_and_nothing_is_stored()
    {
        using var series = await CtSeries.CreateAsync(slices: 1);

        await Assert.ThrowsAsync<InvalidOperationException>(() => StoreScuAsync(OrthancServer.DeclaredModalityAet, "ANYTHING", series.Files[0]));

        Assert.False(await IsStoredAsync(series), "an image sent to a wrong called AE title was stored");
    }

    [Fact]
    public async Task C_ECHO_answers_any_caller()
    {
        // A scanner's "test connection" button before it is declared: the operator can check the network first.
        var output = await ProcessRunner.RunAsync("echoscu",
            ["-v", "-aet", "NOT_DECLARED", "-aec", OrthancServer.Aet, "127.0.0.1", orthanc.DicomPort.ToString(CultureInfo.InvariantCulture)],
            TimeSpan.FromSeconds(30));

        Assert.Contains("Received Echo Response (Success)", output, StringComparison.Ordinal);
    }

    // storescu exits non-zero when the association is refused or the store fails (--abort-after-store-failure is not
    // needed: one file, and its status decides the exit code with dcmtk 3.6.7).
    private Task<string> StoreScuAsync(string callingAet, string calledAet, string file) =>
        ProcessRunner.RunAsync("storescu",
            ["-aet", callingAet, "-aec", calledAet, "127.0.0.1", orthanc.DicomPort.ToString(CultureInfo.InvariantCulture), file],
            TimeSpan.FromSeconds(30));

    private async Task<bool> IsStoredAsync(CtSeries series)
    {
        using var client = orthanc.CreateClient();
        using var lookup = await client.PostAsync(new Uri("tools/lookup", UriKind.Relative), new StringContent(series.SeriesInstanceUid));
        lookup.EnsureSuccessStatusCode();
        using var found = JsonDocument.Parse(await lookup.Content.ReadAsStringAsync());
        return found.RootElement.GetArrayLength() > 0;
    }
}
