using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Nifti;
using OrthancSeg.Dicom.Volumes;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Conversions;

/// <summary>
/// `orthancseg convert` run as a process on the dcmjs fixtures of the DICOM tests (a 6-slice 5×7 CT series and
/// the BINARY SEG dcmjs made from it: liver on slices 2 and 4, tumor on slices 0 and 2).
/// </summary>
public sealed class ConvertCommandTests : IDisposable
{
    private static readonly string Fixtures = FindFixtures();
    private static readonly string SeriesFolder = Path.Combine(Fixtures, "series");
    private readonly string _work = Directory.CreateTempSubdirectory("orthancseg-convert-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private string Work(string name) => Path.Combine(_work, name);

    private static string FindFixtures()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "OrthancSeg.sln")))
            {
                return Path.Combine(dir.FullName, "tests", "OrthancSeg.Dicom.Tests", "Fixtures", "dcmjs");
            }
        }
        throw new DirectoryNotFoundException("OrthancSeg.sln not found above the test binaries");
    }

    private static async Task<CliResult> Convert(params string[] arguments) => await CliProcess.RunAsync(["convert", .. arguments]);

    [Fact]
    public async Task Series_becomes_a_nifti_volume_and_a_one_line_summary()
    {
        var result = await Convert("series", SeriesFolder, Work("ct.nii.gz"));

        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal("7×5×6 voxels, spacing 0.6×0.8×2.5 mm, axial, int16", result.Stdout.Trim());
        var image = NiftiReader.ReadFile(Work("ct.nii.gz"));
        Assert.Equal((7, 5, 6), (image.Columns, image.Rows, image.Slices));
        Assert.Equal((short)((3 * 100) + 17), image.ToVolume(VoxelType.Int16).AsInt16()[(3 * 35) + 17]);
    }

    [Fact]
    public async Task Seg_becomes_a_label_map_and_the_label_map_a_seg_that_reads_back_the_same()
    {
        var first = await Convert("seg", Path.Combine(Fixtures, "seg-binary.dcm"), "--series", SeriesFolder, "--labels", "liver=1,tumor=2", Work("labels.nii.gz"));
        Assert.True(first.ExitCode == 0, first.Stderr);
        Assert.Contains("segment 1 'Liver' → 1: 5 voxels on 2 slice(s)", first.Stdout, StringComparison.Ordinal);

        var written = await Convert("labels", Work("labels.nii.gz"), "--series", SeriesFolder, "--labels", "liver=1,tumor=2", "--algorithm", "test-model", Work("seg.dcm"));
        Assert.True(written.ExitCode == 0, written.Stderr);
        var seg = DicomReader.ReadFile(Work("seg.dcm")).Dataset;
        Assert.Equal(SopClasses.Segmentation, seg.GetString(DicomTags.SOPClassUID));
        Assert.Equal("AUTOMATIC", seg.GetSequence(DicomTags.SegmentSequence)[0].GetString(DicomTags.SegmentAlgorithmType));
        Assert.Equal("Segmentation by test-model", seg.GetString(DicomTags.SeriesDescription));
        Assert.Equal("10200004", seg.GetSequence(DicomTags.SegmentSequence)[0].GetFirstItem(DicomTags.SegmentedPropertyTypeCodeSequence)!.GetString(DicomTags.CodeValue));

        var again = await Convert("seg", Work("seg.dcm"), "--series", SeriesFolder, "--labels", "liver=1,tumor=2", Work("labels-again.nii.gz"));
        Assert.True(again.ExitCode == 0, again.Stderr);
        var before = NiftiReader.ReadFile(Work("labels.nii.gz"));
        var after = NiftiReader.ReadFile(Work("labels-again.nii.gz"));
        Assert.Equal(before.Data, after.Data);
        Assert.Equal(9, before.Data.Count(v => v != 0));
    }

    [Fact]
    public async Task Segment_missing_from_the_labels_is_refused_naming_the_known_ones()
    {
        var result = await Convert("seg", Path.Combine(Fixtures, "seg-binary.dcm"), "--series", SeriesFolder, "--labels", "liver=1,spleen=3", Work("labels.nii.gz"));

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("'Tumor'", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("known names: liver, spleen", result.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Work("labels.nii.gz")));
    }

    [Fact]
    public async Task Empty_label_map_writes_no_seg_and_exits_3()
    {
        var grid = SeriesVolumeBuilder.Build(Directory.GetFiles(SeriesFolder).Select(DicomReader.ReadFile)).Grid.Geometry;
        NiftiWriter.WriteFile(Volume.Allocate(grid, VoxelType.UInt8), Work("empty.nii.gz"));

        var result = await Convert("labels", Work("empty.nii.gz"), "--series", SeriesFolder, "--labels", "liver=1", Work("seg.dcm"));

        Assert.Equal(3, result.ExitCode);
        Assert.Contains("no SEG written", result.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Work("seg.dcm")));
    }

    [Fact]
    public async Task Folder_with_two_series_is_refused_until_one_is_chosen()
    {
        var mixed = Directory.CreateDirectory(Work("mixed")).FullName;
        foreach (var file in Directory.GetFiles(SeriesFolder))
        {
            File.Copy(file, Path.Combine(mixed, Path.GetFileName(file)));
        }
        var other = DicomReader.ReadFile(Directory.GetFiles(SeriesFolder)[0]);
        other.Dataset.SetString(DicomTags.SeriesInstanceUID, DicomVR.UI, "1.2.826.0.1.3680043.8.498.77.55");
        other.Dataset.SetString(DicomTags.SOPInstanceUID, DicomVR.UI, "1.2.826.0.1.3680043.8.498.77.56");
        File.WriteAllBytes(Path.Combine(mixed, "other.dcm"), DicomWriter.ToBytes(DicomFile.Create(other.Dataset)));

        var refused = await Convert("series", mixed, Work("ct.nii.gz"));
        var chosen = await Convert("series", mixed, Work("ct.nii.gz"), "--series-uid", "1.2.826.0.1.3680043.8.498.77.2");

        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("holds 2 image series", refused.Stderr, StringComparison.Ordinal);
        Assert.True(chosen.ExitCode == 0, chosen.Stderr);
    }
}
