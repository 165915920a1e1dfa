using System.Text.Json;
using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Volumes;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Ohif;

/// <summary>
/// The annotator's path end to end in a real browser: OHIF 3.13.2 (served by the fixture nginx in front of the
/// fixture Orthanc) is driven by tests/e2e/ohif-paint-and-save.mjs like a user — brush strokes on three slices,
/// Export → DICOM SEG → Save — and the SEG that OHIF's own code stored by STOW-RS is fetched back from Orthanc
/// and read with our SegmentationReader onto the uploaded series' grid.
/// </summary>
[Collection(OrthancCollection.Name)]
public sealed class OhifPaintAndSaveTests(OrthancServer orthanc)
{
    private const int Slices = 12;

    /// <summary>Makes OHIF store BINARY, 1 bit, Explicit VR Little Endian instead of its LABELMAP + RLE default.</summary>
    private const string BitmapStore =
        "window.config.dataSources[0].configuration.segmentation = { store: { defaultMode: 'bitmap', transferSyntaxUID: '1.2.840.10008.1.2.1' } };";

    [Fact]
    public async Task Strokes_painted_in_OHIF_are_saved_as_a_labelmap_RLE_SEG_on_exactly_the_painted_slices()
    {
        var saved = await PaintAndSaveAsync("labelmap", appConfigAppendix: null, paintAt: [3, 6, 9]);

        Assert.Equal(SopClasses.LabelMapSegmentation, saved.File.Dataset.GetString(DicomTags.SOPClassUID));
        Assert.Equal(TransferSyntaxes.RleLossless, saved.File.TransferSyntaxUid);
        Assert.Equal("LABELMAP", saved.Result.SegmentationType);
        AssertLabelsOnExactly(saved, [3, 6, 9]);
    }

    [Fact]
    public async Task With_the_bitmap_store_configured_OHIF_saves_a_BINARY_explicit_VR_SEG_on_exactly_the_painted_slices()
    {
        var saved = await PaintAndSaveAsync("binary", BitmapStore, paintAt: [2, 7, 11]);

        Assert.Equal(SopClasses.Segmentation, saved.File.Dataset.GetString(DicomTags.SOPClassUID));
        Assert.Equal(TransferSyntaxes.ExplicitVRLittleEndian, saved.File.TransferSyntaxUid);
        Assert.Equal("BINARY", saved.Result.SegmentationType);
        Assert.Equal(1, saved.File.Dataset.GetInt(DicomTags.BitsAllocated));
        AssertLabelsOnExactly(saved, [2, 7, 11]);
    }

    private sealed record Saved(DicomFile File, LabelMapResult Result, int[] ShownSlices);

    private async Task<Saved> PaintAndSaveAsync(string variant, string? appConfigAppendix, int[] paintAt)
    {
        using var series = await CtSeries.CreateAsync(Slices);
        await orthanc.UploadAsync(series.Files);
        await using var ohif = await OhifServer.StartAsync(orthanc, appConfigAppendix);
        var artifacts = Path.Combine(RepositoryPaths.Artifacts, $"ohif-paint-{variant}");
        var reportName = $"OrthancSeg e2e {variant} {series.PatientId}";

        var report = await PaintAndSaveScript.RunAsync(ohif, series.StudyInstanceUid, Slices, paintAt, reportName, artifacts, orthanc.LogTail);
        Assert.Equal(paintAt, report.ShownSlices);
        Assert.All(report.SliceCounts, n => Assert.Equal(Slices, n));
        Assert.Equal(200, report.StowStatus);
        Assert.True(report.ListedInStudyBrowser, $"after saving, OHIF's study browser does not list a series named \"{reportName}\" (see {artifacts}/ohif-saved.png)");
        var reportedUid = report.SegSopInstanceUid;

        // The study must now hold exactly one SEG series next to the CT: the one OHIF stored.
        using var client = orthanc.CreateClient();
        var studyId = await LookupAsync(client, series.StudyInstanceUid, "Study");
        using var seriesList = JsonDocument.Parse(await client.GetStringAsync(new Uri($"studies/{studyId}/series", UriKind.Relative)));
        var segSeries = Assert.Single(seriesList.RootElement.EnumerateArray(),
            s => s.GetProperty("MainDicomTags").TryGetProperty("Modality", out var m) && m.GetString() == "SEG");
        var instanceId = Assert.Single(segSeries.GetProperty("Instances").EnumerateArray()).GetString();
        var bytes = await client.GetByteArrayAsync(new Uri($"instances/{instanceId}/file", UriKind.Relative));
        var file = DicomReader.Read(bytes);
        Assert.Equal(reportedUid, file.Dataset.GetString(DicomTags.SOPInstanceUID));
        Assert.Equal(reportName, file.Dataset.GetString(DicomTags.SeriesDescription));
        Assert.Equal(series.StudyInstanceUid, file.Dataset.GetString(DicomTags.StudyInstanceUID));

        // Kept with its series, so a person can look at it (and refresh the Dicom.Tests fixtures from it).
        Directory.CreateDirectory(Path.Combine(artifacts, "series"));
        await File.WriteAllBytesAsync(Path.Combine(artifacts, "seg.dcm"), bytes);
        foreach (var image in series.Files)
        {
            File.Copy(image, Path.Combine(artifacts, "series", Path.GetFileName(image)), overwrite: true);
        }

        var grid = SeriesVolumeBuilder.Build(series.Files.Select(DicomReader.ReadFile)).Grid;
        var result = SegmentationReader.Read(file, grid, SegmentMapping.Parse("Segment 1=1"));
        return new Saved(file, result, report.ShownSlices);
    }

    /// <summary>OHIF shows an axial CT in descending z: its slice k of N is our ascending slice N − k.</summary>
    private static void AssertLabelsOnExactly(Saved saved, int[] shownSlices)
    {
        var expected = shownSlices.Select(k => Slices - k).Order().ToArray();
        var segment = Assert.Single(saved.Result.Segments);
        Assert.Equal(("Segment 1", "MANUAL"), (segment.Segment.Label, segment.Segment.AlgorithmType));
        Assert.Equal(expected, segment.Slices);

        var labels = saved.Result.LabelMap;
        var paintedSlices = Enumerable.Range(0, labels.Geometry.Slices)
            .Where(k => labels.SliceBytes(k).IndexOfAnyExcept((byte)0) >= 0)
            .ToArray();
        Assert.Equal(expected, paintedSlices);
        Assert.All(labels.Data, v => Assert.True(v is 0 or 1, $"label value {v} where only segment 1 → 1 was painted"));
        // A short stroke of a 3 mm brush on 2 mm pixels: a few voxels per slice, never a filled slice.
        foreach (var k in expected)
        {
            var count = labels.SliceBytes(k).Length - labels.SliceBytes(k).Count((byte)0);
            Assert.InRange(count, 3, 200);
        }
    }

    private static async Task<string> LookupAsync(HttpClient client, string uid, string type)
    {
        using var response = await client.PostAsync(new Uri("tools/lookup", UriKind.Relative), new StringContent(uid));
        response.EnsureSuccessStatusCode();
        using var found = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return found.RootElement.EnumerateArray().Single(e => e.GetProperty("Type").GetString() == type).GetProperty("ID").GetString()!;
    }
}
