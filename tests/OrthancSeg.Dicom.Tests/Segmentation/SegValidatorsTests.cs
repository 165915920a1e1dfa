using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Tests.Tools;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Segmentation;

/// <summary>
/// A SEG written for a realistic CT series (512×512 slices of the integration tests' phantom, written by pydicom with
/// make_ct_series.py) checked by others: dciodvfy (Debian's dicom3tools) against the Segmentation IOD, and pydicom and our
/// reader decoding it back into exactly the label map it was written from.
/// </summary>
public sealed class SegValidatorsTests : IClassFixture<SegValidatorsTests.PhantomSeg>
{
    private readonly PhantomSeg _phantom;

    public SegValidatorsTests(PhantomSeg phantom) => _phantom = phantom;

    /// <summary>The phantom series, a label map with three structures drawn from its voxels, and the SEG written from it.</summary>
    public sealed class PhantomSeg : IDisposable
    {
        public const int Slices = 24;
        private readonly TempDirectory _temp = new();

        public PhantomSeg()
        {
            var seriesDir = _temp.File("series");
            var script = Fixtures.Path("..", "..", "OrthancSeg.IntegrationTests", "Fixtures", "make_ct_series.py");
            var made = ExternalTool.Run(ExternalTool.Python, [script, seriesDir, $"{Slices}", "OSEG-VALIDATE", "Phantom validation", "512"]);
            Assert.True(made.ExitCode == 0, $"make_ct_series.py failed: {made.Error}");
            var files = Directory.GetFiles(seriesDir, "*.dcm").Select(DicomReader.ReadFile).ToList();
            Series = SeriesVolumeBuilder.Build(files);
            LabelMap = Structures(Series.Volume);
            var written = SegmentationWriter.Write(LabelMap, files.Select(f => f.Dataset).ToList(),
                [new(1, "liver"), new(2, "kidney left"), new(3, "tumor")],
                new SegmentationWriterOptions(SegmentAlgorithmType.Automatic, "liver-ct-model-7") { AlgorithmVersion = "nnU-Net 3d_fullres folds 0-4" });
            Assert.True(written.Written, written.NotWrittenReason);
            Written = written;
            SegPath = _temp.File("seg.dcm");
            File.WriteAllBytes(SegPath, DicomWriter.ToBytes(DicomFile.Create(written.Segmentation!)));
        }

        public SeriesVolume Series { get; }

        public Volume LabelMap { get; }

        public SegmentationWriteResult Written { get; }

        public string SegPath { get; }

        /// <summary>
        /// From the image itself: the dense sphere (≥ 300 HU) is "liver", water in the left fifth of the cylinder is the
        /// "kidney", and a 20×12-voxel block inside the sphere on three slices is a "tumor" — shapes a model could predict.
        /// </summary>
        private static Volume Structures(Volume image)
        {
            var g = image.Geometry;
            var map = Volume.Allocate(g, VoxelType.UInt8);
            var hu = image.Type == VoxelType.Int16 ? null : image.AsFloat32().ToArray();
            var raw = image.Type == VoxelType.Int16 ? image.AsInt16().ToArray() : null;
            for (var k = 0; k < g.Slices; k++)
            {
                for (var r = 0; r < g.Rows; r++)
                {
                    for (var c = 0; c < g.Columns; c++)
                    {
                        var i = (((long)k * g.Rows) + r) * g.Columns + c;
                        var value = hu is not null ? hu[i] : raw![i];
                        if (value >= 300)
                        {
                            map.Data[i] = (byte)(k is >= 10 and < 13 && r is >= 250 and < 262 && c is >= 260 and < 280 ? 3 : 1);
                        }
                        else if (value is > -100 and < 100 && c < g.Columns / 5 + 60 && c > 60)
                        {
                            map.Data[i] = 2;
                        }
                    }
                }
            }
            return map;
        }

        public void Dispose() => _temp.Dispose();
    }

    [Fact]
    public void Dciodvfy_finds_no_error_in_our_seg()
    {
        var result = ExternalTool.Run("dciodvfy", [_phantom.SegPath]);
        // dciodvfy writes its findings to stderr; "Error" lines are violations of the IOD, "Warning" lines advice.
        var findings = (result.Error + result.Output).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var warning in findings.Where(l => l.StartsWith("Warning", StringComparison.Ordinal)))
        {
            Console.WriteLine($"dciodvfy: {warning}");
        }
        var errors = findings.Where(l => l.StartsWith("Error", StringComparison.Ordinal)).ToList();
        Assert.True(errors.Count == 0, $"dciodvfy reports errors:\n{string.Join('\n', errors)}");
        Assert.Contains(findings, l => l.Contains("Segmentation", StringComparison.Ordinal));
    }

    [Fact]
    public void Our_reader_decodes_the_seg_into_exactly_the_label_map()
    {
        var back = SegmentationReader.Read(DicomReader.ReadFile(_phantom.SegPath), _phantom.Series.Grid,
            SegmentMapping.Parse("liver=1,kidney left=2,tumor=3"));

        Assert.Equal(_phantom.LabelMap.Data, back.LabelMap.Data);
        Assert.Equal([1, 2, 3], back.Segments.Select(s => (int)s.Value).Order());
        Assert.All(back.Segments, s => Assert.True(s.VoxelCount > 0));
    }

    [Fact]
    public void Pydicom_decodes_the_seg_into_exactly_the_label_map()
    {
        // pydicom places each frame by its referenced SOP instance (the series' files are named by slice order),
        // rebuilding the label map from its own unpacking of the bits; the two maps must be equal voxel for voxel.
        var expected = _phantom.Series;
        var output = ExternalTool.RunPython("""
            import sys, hashlib, pydicom, numpy as np
            seg = pydicom.dcmread(sys.argv[1])
            uids = sys.argv[2].split(',')
            slice_of = {u: k for k, u in enumerate(uids)}
            frames = seg.pixel_array.reshape(int(seg.NumberOfFrames), seg.Rows, seg.Columns)
            labels = np.zeros((len(uids), seg.Rows, seg.Columns), dtype=np.uint8)
            for item, frame in zip(seg.PerFrameFunctionalGroupsSequence, frames):
                number = item.SegmentIdentificationSequence[0].ReferencedSegmentNumber
                uid = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
                labels[slice_of[uid]][frame != 0] = number
            print(hashlib.sha256(labels.tobytes()).hexdigest())
            """, _phantom.SegPath, string.Join(',', expected.SopInstanceUids));

        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(_phantom.LabelMap.Data)), output.Trim());
    }
}
