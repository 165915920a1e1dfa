using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Tests.Tools;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Segmentation;

/// <summary>Runs Fixtures/pydicom/make_series_and_segs.py once for the class: a series and SEGs written by pydicom.</summary>
public sealed class PydicomFiles : IDisposable
{
    private readonly TempDirectory _directory = new();

    public PydicomFiles()
    {
        ExternalTool.RunPython(File.ReadAllText(Fixtures.Path("pydicom", "make_series_and_segs.py")), _directory.Path);
        Series = SeriesVolumeBuilder.Build(Directory.GetFiles(Path.Combine(_directory.Path, "series")).Select(DicomReader.ReadFile));
    }

    public SeriesVolume Series { get; }

    public DicomFile Read(string name) => DicomReader.ReadFile(_directory.File(name));

    public void Dispose() => _directory.Dispose();
}

public sealed class PydicomSegTests(PydicomFiles files) : IClassFixture<PydicomFiles>
{
    private static byte[] Expected(params (int Slice, int Pixel, byte Value)[] voxels)
    {
        var expected = new byte[6 * 35];
        foreach (var (k, p, v) in voxels)
        {
            expected[(k * 35) + p] = v;
        }
        return expected;
    }

    [Fact]
    public void Implicit_vr_series_listed_head_to_feet_builds_ascending_in_hounsfield_units()
    {
        Assert.Equal("7×5×6 voxels, spacing 0.6×0.8×2.5 mm, axial, int16", files.Series.Summary);
        Assert.Equal("1.2.826.0.1.3680043.8.498.88.100.0", files.Series.SopInstanceUids[0]);
        Assert.Equal((4 * 100) + 9, files.Series.Volume.AsInt16()[(4 * 35) + 9]);
    }

    [Fact]
    public void Highdicom_style_seg_maps_segments_by_their_codes()
    {
        var mapping = new SegmentMapping([], [new(new CodedConcept("10200004", "SCT", "Liver"), 1), new(new CodedConcept("4147007", "SCT", "Mass"), 2)]);

        var result = SegmentationReader.Read(files.Read("seg-highdicom-style.dcm"), files.Series.Grid, mapping);

        Assert.Equal(Expected(
            (1, 1, 1), (1, 31, 1), (2, 2, 1), (2, 32, 1), (3, 3, 1), (3, 33, 1), (4, 4, 1), (4, 34, 1),
            (2, 12, 2), (3, 13, 2), (5, 15, 2)), result.LabelMap.Data);
        Assert.Equal("AUTOMATIC", result.Segments[0].Segment.AlgorithmType);
        Assert.Equal("test-model", result.Segments[0].Segment.AlgorithmName);
    }

    [Fact]
    public void Highdicom_style_seg_maps_segment_labels_case_insensitively()
    {
        var result = SegmentationReader.Read(files.Read("seg-highdicom-style.dcm"), files.Series.Grid, SegmentMapping.Parse("LIVER=1, liver TUMOUR=2"));

        Assert.Equal([1, 2, 3, 4], result.Segments.Single(s => s.Value == 1).Slices);
        Assert.Equal([2, 3, 5], result.Segments.Single(s => s.Value == 2).Slices);
    }

    [Fact]
    public void Ohif_labelmap_rle_seg_with_descending_frames_and_sparse_references_reads_onto_its_slices()
    {
        var file = files.Read("seg-ohif-labelmap-rle.dcm");

        var result = SegmentationReader.Read(file, files.Series.Grid, SegmentMapping.Parse("Segment 1=1,Segment 2=2"));

        Assert.Equal(TransferSyntaxes.RleLossless, file.TransferSyntaxUid);
        Assert.Equal(Expected((4, 0, 1), (4, 1, 1), (4, 2, 1), (4, 20, 2), (4, 21, 2), (1, 34, 2)), result.LabelMap.Data);
        Assert.Equal([1, 4], result.Segments.Single(s => s.Value == 2).Slices);
    }
}
