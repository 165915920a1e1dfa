using System.Buffers.Binary;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Tests.Tools;
using OrthancSeg.Dicom.Tests.Volumes;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Segmentation;

public sealed class SegmentationWriterTests
{
    // 5×7 = 35 pixels per frame, so frames share bytes in the bit stream.
    private static readonly List<DicomFile> Files = SyntheticSeries.Create(5, 7, SyntheticSeries.AxialPositions(0, 2, 4, 6, 8, 10));
    private static readonly SeriesVolume Series = SeriesVolumeBuilder.Build(Files);
    private static readonly SegmentDefinition[] LiverTumor = [new(1, "liver"), new(2, "tumor")];
    private static readonly SegmentationWriterOptions Model = new(SegmentAlgorithmType.Automatic, "nnunet-liver-v3", "Liver prediction");

    private static Volume LabelMap(params (int Slice, int Row, int Column, byte Value)[] voxels)
    {
        var map = Volume.Allocate(Series.Volume.Geometry, VoxelType.UInt8);
        foreach (var (k, r, c, v) in voxels)
        {
            map.Data[(k * 35) + (r * 7) + c] = v;
        }
        return map;
    }

    private static Volume TwoSegmentsOnSparseSlices() => LabelMap(
        (1, 0, 0, 1), (1, 4, 6, 1), (1, 2, 3, 2), (3, 2, 2, 1), (4, 0, 6, 2), (4, 1, 6, 2), (5, 4, 0, 2));

    private static List<DicomDataset> Sources() => Files.Select(f => f.Dataset).ToList();

    private static DicomFile WriteAndReread(Volume map, IReadOnlyList<DicomDataset>? sources = null, SegmentDefinition[]? definitions = null)
    {
        var result = SegmentationWriter.Write(map, sources ?? Sources(), definitions ?? LiverTumor, Model);
        Assert.True(result.Written, result.NotWrittenReason);
        return DicomReader.Read(DicomWriter.ToBytes(DicomFile.Create(result.Segmentation!)));
    }

    [Fact]
    public void Label_map_survives_seg_and_back_unchanged()
    {
        var map = TwoSegmentsOnSparseSlices();

        var back = SegmentationReader.Read(WriteAndReread(map), Series.Grid, SegmentMapping.Parse("liver=1,tumor=2"));

        Assert.Equal(map.Data, back.LabelMap.Data);
        Assert.Equal(0, back.OverlapVoxels);
        Assert.Equal([1, 3], back.Segments.Single(s => s.Value == 1).Slices);
        Assert.Equal([1, 4, 5], back.Segments.Single(s => s.Value == 2).Slices);
    }

    [Fact]
    public void Seg_holds_only_frames_with_content_in_segment_major_order_with_references()
    {
        var ds = WriteAndReread(TwoSegmentsOnSparseSlices()).Dataset;

        Assert.Equal(SopClasses.Segmentation, ds.GetString(DicomTags.SOPClassUID));
        Assert.Equal("BINARY", ds.GetString(DicomTags.SegmentationType));
        Assert.Equal(5, ds.GetInt(DicomTags.NumberOfFrames));
        var frames = ds.GetSequence(DicomTags.PerFrameFunctionalGroupsSequence);
        var placed = frames.Select(f => (
            Segment: f.GetFirstItem(DicomTags.SegmentIdentificationSequence)!.GetInt(DicomTags.ReferencedSegmentNumber),
            Index: f.GetFirstItem(DicomTags.FrameContentSequence)!.GetDoubles(DicomTags.DimensionIndexValues),
            Uid: f.GetFirstItem(DicomTags.DerivationImageSequence)!.GetFirstItem(DicomTags.SourceImageSequence)!.GetString(DicomTags.ReferencedSOPInstanceUID),
            Z: f.GetFirstItem(DicomTags.PlanePositionSequence)!.GetDoubles(DicomTags.ImagePositionPatient)[2])).ToList();
        Assert.Equal([1, 1, 2, 2, 2], placed.Select(p => p.Segment!.Value));
        Assert.Equal([2.0, 6, 2, 8, 10], placed.Select(p => p.Z));
        Assert.Equal([1.0, 2], placed[0].Index);
        Assert.Equal([2.0, 6], placed[4].Index);
        Assert.Equal(Series.SopInstanceUids[5], placed[4].Uid);
        var source = frames[0].GetFirstItem(DicomTags.DerivationImageSequence)!.GetFirstItem(DicomTags.SourceImageSequence)!;
        Assert.Equal(SopClasses.CTImage, source.GetString(DicomTags.ReferencedSOPClassUID));
        Assert.Equal("121322", source.GetFirstItem(DicomTags.PurposeOfReferenceCodeSequence)!.GetString(DicomTags.CodeValue));
        var shared = ds.GetFirstItem(DicomTags.SharedFunctionalGroupsSequence)!;
        Assert.Equal(2, shared.GetFirstItem(DicomTags.PixelMeasuresSequence)!.GetDouble(DicomTags.SpacingBetweenSlices));
        Assert.Equal([1.0, 0, 0, 0, 1, 0], shared.GetFirstItem(DicomTags.PlaneOrientationSequence)!.GetDoubles(DicomTags.ImageOrientationPatient));
        var dimensions = ds.GetSequence(DicomTags.DimensionIndexSequence);
        Assert.Equal([DicomTags.ReferencedSegmentNumber, DicomTags.ImagePositionPatient], dimensions.Select(d => Pointer(d, DicomTags.DimensionIndexPointer)));
        Assert.Equal([DicomTags.SegmentIdentificationSequence, DicomTags.PlanePositionSequence], dimensions.Select(d => Pointer(d, DicomTags.FunctionalGroupPointer)));
        Assert.Equal(ds.GetFirstItem(DicomTags.DimensionOrganizationSequence)!.GetString(DicomTags.DimensionOrganizationUID), dimensions[1].GetString(DicomTags.DimensionOrganizationUID));
        var referenced = ds.GetFirstItem(DicomTags.ReferencedSeriesSequence)!;
        Assert.Equal(SyntheticSeries.SeriesUid, referenced.GetString(DicomTags.SeriesInstanceUID));
        Assert.Equal(Series.SopInstanceUids, referenced.GetSequence(DicomTags.ReferencedInstanceSequence).Select(i => i.GetString(DicomTags.ReferencedSOPInstanceUID)));
        // 5 frames × 35 bits = 175 bits = 22 bytes, padded to 22 (already even).
        Assert.Equal(22, ds[DicomTags.PixelData]!.Value.Length);
        Assert.Equal(SyntheticSeries.StudyUid, ds.GetString(DicomTags.StudyInstanceUID));
        Assert.Equal(SyntheticSeries.FrameOfReferenceUid, ds.GetString(DicomTags.FrameOfReferenceUID));
        Assert.Equal("Test^Patient", ds.GetString(DicomTags.PatientName));
        Assert.NotEqual(SyntheticSeries.SeriesUid, ds.GetString(DicomTags.SeriesInstanceUID));
        var segment = ds.GetSequence(DicomTags.SegmentSequence)[1];
        Assert.Equal(("tumor", "AUTOMATIC", "nnunet-liver-v3"),
            (segment.GetString(DicomTags.SegmentLabel), segment.GetString(DicomTags.SegmentAlgorithmType), segment.GetString(DicomTags.SegmentAlgorithmName)));
        Assert.Equal(3, segment.GetDoubles(DicomTags.RecommendedDisplayCIELabValue).Length);
    }

    private static DicomTag Pointer(DicomDataset item, DicomTag attribute)
    {
        var bytes = item[attribute]!.Value.Span;
        Assert.Equal(DicomVR.AT, item[attribute]!.VR);
        return new DicomTag(BinaryPrimitives.ReadUInt16LittleEndian(bytes), BinaryPrimitives.ReadUInt16LittleEndian(bytes[2..]));
    }

    [Fact]
    public void Segments_are_numbered_consecutively_whatever_the_label_values()
    {
        var map = LabelMap((0, 0, 0, 3), (2, 1, 1, 7));

        var file = WriteAndReread(map, definitions: [new(3, "kidney"), new(7, "cyst")]);
        var back = SegmentationReader.Read(file, Series.Grid, SegmentMapping.Parse("kidney=3,cyst=7"));

        Assert.Equal([1.0, 2], file.Dataset.GetSequence(DicomTags.SegmentSequence).Select(s => s.GetDouble(DicomTags.SegmentNumber)!.Value));
        Assert.Equal(map.Data, back.LabelMap.Data);
    }

    [Fact]
    public void Sources_in_any_order_are_referenced_in_slice_order()
    {
        var shuffled = Sources();
        shuffled.Reverse();

        var ds = WriteAndReread(TwoSegmentsOnSparseSlices(), shuffled).Dataset;

        Assert.Equal(Series.SopInstanceUids, ds.GetFirstItem(DicomTags.ReferencedSeriesSequence)!
            .GetSequence(DicomTags.ReferencedInstanceSequence).Select(i => i.GetString(DicomTags.ReferencedSOPInstanceUID)));
    }

    [Fact]
    public void Empty_label_map_writes_no_seg_and_says_why()
    {
        var result = SegmentationWriter.Write(LabelMap(), Sources(), LiverTumor, Model);

        Assert.False(result.Written);
        Assert.Contains("no labelled voxel", result.NotWrittenReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Label_value_without_definition_is_refused()
    {
        var e = Assert.Throws<DicomException>(() => SegmentationWriter.Write(LabelMap((0, 0, 0, 4)), Sources(), LiverTumor, Model));

        Assert.Contains("Label value(s) 4", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Automatic_seg_without_algorithm_name_is_refused()
    {
        var e = Assert.Throws<DicomException>(() => SegmentationWriter.Write(TwoSegmentsOnSparseSlices(), Sources(), LiverTumor, new SegmentationWriterOptions(SegmentAlgorithmType.Automatic)));

        Assert.Contains("needs an algorithm name", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Sources_that_do_not_fit_the_grid_are_refused()
    {
        var sources = Sources();
        sources[2] = SyntheticSeries.Create(5, 7, SyntheticSeries.AxialPositions(5))[0].Dataset;

        var e = Assert.Throws<DicomException>(() => SegmentationWriter.Write(TwoSegmentsOnSparseSlices(), sources, LiverTumor, Model));

        Assert.Contains("lies on no slice", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pydicom_and_dcmdump_read_our_seg_frame_by_frame()
    {
        using var temp = new TempDirectory();
        var path = temp.File("seg.dcm");
        File.WriteAllBytes(path, DicomWriter.ToBytes(WriteAndReread(TwoSegmentsOnSparseSlices())));

        // pydicom unpacks the continuous bit stream on its own; each frame's set pixels must be where we put them.
        var output = ExternalTool.RunPython("""
            import sys, pydicom, numpy as np
            ds = pydicom.dcmread(sys.argv[1])
            frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns)
            for item, frame in zip(ds.PerFrameFunctionalGroupsSequence, frames):
                seg = item.SegmentIdentificationSequence[0].ReferencedSegmentNumber
                z = float(item.PlanePositionSequence[0].ImagePositionPatient[2])
                rows, cols = np.nonzero(frame)
                print(seg, z, ' '.join(f'{r},{c}' for r, c in zip(rows, cols)))
            """, path);

        Assert.Equal(
            ["1 2.0 0,0 4,6", "1 6.0 2,2", "2 2.0 2,3", "2 8.0 0,6 1,6", "2 10.0 4,0"],
            output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        var dump = ExternalTool.Run("dcmdump", [path]);
        Assert.True(dump.ExitCode == 0, dump.Error);
        Assert.DoesNotContain("E:", dump.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("W:", dump.Error, StringComparison.Ordinal);
        var count = ExternalTool.Run("dcmdump", ["+P", "0028,0008", path]);
        Assert.Contains("[5]", count.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(13, 11)] // 143 voxels: frames start mid-byte, several 32-voxel chunks and a tail per frame
    [InlineData(16, 16)] // 256 voxels: frames own their bytes and are packed in parallel
    public void Pixel_data_is_the_voxel_by_voxel_bit_stream_of_the_frames_for_any_frame_size(int rows, int columns)
    {
        var files = SyntheticSeries.Create(rows, columns, SyntheticSeries.AxialPositions(0, 1, 2, 3, 4, 5, 6, 7, 8));
        var series = SeriesVolumeBuilder.Build(files);
        var map = Volume.Allocate(series.Volume.Geometry, VoxelType.UInt8);
        var random = new Random(7);
        var n = rows * columns;
        for (var i = 0; i < map.Data.Length; i++)
        {
            // Runs and scattered voxels of three values, and slice 4 empty.
            map.Data[i] = i / n == 4 ? (byte)0 : (byte)(random.Next(10) < 6 ? 0 : 1 + ((i / 5) % 3));
        }
        var result = SegmentationWriter.Write(map, files.Select(f => f.Dataset).ToList(), [new(1, "liver"), new(2, "tumor"), new(3, "cyst")], Model);

        // Segment-major, ascending slices, only frames with their value: the naive packer of the reader tests is the reference.
        var frames = new List<byte[]>();
        for (byte v = 1; v <= 3; v++)
        {
            for (var k = 0; k < 9; k++)
            {
                var mask = map.SliceBytes(k).ToArray().Select(x => x == v ? (byte)1 : (byte)0).ToArray();
                if (mask.Contains((byte)1))
                {
                    frames.Add(mask);
                }
            }
        }
        var expected = SyntheticSeg.Pack(frames, n, SyntheticSeg.Packing.Contiguous);
        var pixels = result.Segmentation![DicomTags.PixelData]!.Value.ToArray();
        Assert.Equal(3 * 8, result.Segmentation.GetInt(DicomTags.NumberOfFrames));
        Assert.Equal(expected, pixels[..expected.Length]);
        Assert.All(pixels[expected.Length..], b => Assert.Equal(0, b));
        var back = SegmentationReader.Read(DicomReader.Read(DicomWriter.ToBytes(DicomFile.Create(result.Segmentation))), series.Grid,
            SegmentMapping.Parse("liver=1,tumor=2,cyst=3"));
        Assert.Equal(map.Data, back.LabelMap.Data);
    }

    [Fact]
    public void Rgb_colour_converts_to_dicom_cielab_like_dcmjs()
    {
        // Values printed by dcmjs 0.51.1: Colors.rgb2DICOMLAB([1,0,0]).map(Math.round) and the same for white.
        Assert.Equal(new CieLabColour(34885, 53486, 50171), CieLabColour.FromRgb(255, 0, 0));
        Assert.Equal(new CieLabColour(65534, 32899, 32892), CieLabColour.FromRgb(255, 255, 255));
    }
}
