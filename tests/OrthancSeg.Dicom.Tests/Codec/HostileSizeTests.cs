using System.IO.Compression;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Tests.Volumes;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Codec;

/// <summary>
/// Small files that claim huge sizes (issue 12): each is refused with a reason naming the claim, having allocated a small
/// fraction of what it asks for. The allocation is measured on the test's thread, where the codec does all its work for these.
/// </summary>
public sealed class HostileSizeTests
{
    private const long Budget = 64L << 20;

    [Fact]
    public void A_500_byte_seg_declaring_two_billion_frames_is_refused()
    {
        var ds = new DicomDataset()
            .SetString(DicomTags.SOPClassUID, DicomVR.UI, SopClasses.Segmentation)
            .SetString(DicomTags.SOPInstanceUID, DicomVR.UI, "1.2.826.0.1.3680043.8.498.99")
            .SetString(DicomTags.Modality, DicomVR.CS, "SEG")
            .SetString(DicomTags.SegmentationType, DicomVR.CS, "BINARY")
            .SetSequence(DicomTags.SegmentSequence, new DicomDataset().SetUInt16(DicomTags.SegmentNumber, 1).SetString(DicomTags.SegmentLabel, DicomVR.LO, "liver"))
            .SetUInt16(DicomTags.SamplesPerPixel, 1)
            .SetString(DicomTags.PhotometricInterpretation, DicomVR.CS, "MONOCHROME2")
            .SetUInt16(DicomTags.Rows, 8)
            .SetUInt16(DicomTags.Columns, 8)
            .SetString(DicomTags.NumberOfFrames, DicomVR.IS, "2000000000")
            .SetUInt16(DicomTags.BitsAllocated, 1)
            .SetUInt16(DicomTags.BitsStored, 1)
            .SetUInt16(DicomTags.HighBit, 0)
            .SetUInt16(DicomTags.PixelRepresentation, 0)
            .SetBytes(DicomTags.PixelData, DicomVR.OB, new byte[8]);
        var bytes = DicomWriter.ToBytes(DicomWriter.CreateFile(ds));
        Assert.InRange(bytes.Length, 300, 600);
        var grid = SeriesVolumeBuilder.Build(SyntheticSeries.Create(8, 8, SyntheticSeries.AxialPositions(0, 2, 4))).Grid;
        var before = GC.GetAllocatedBytesForCurrentThread();

        var file = DicomReader.Read(bytes);
        var described = Assert.Throws<DicomException>(() => SegmentationReader.Describe(file));
        var read = Assert.Throws<DicomException>(() => SegmentationReader.Read(file, grid, SegmentMapping.Parse("liver=1")));

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("2000000000 frames", described.Message, StringComparison.Ordinal);
        Assert.Contains("2000000000 frames", read.Message, StringComparison.Ordinal);
        Assert.True(allocated < Budget, $"allocated {allocated} bytes");
    }

    [Fact]
    public void A_series_declaring_65535_by_65535_slices_of_2_byte_pixels_is_refused_before_the_volume_is_allocated()
    {
        var files = SyntheticSeries.Create(2, 2, SyntheticSeries.AxialPositions(0, 2, 4), customise: (_, ds) =>
        {
            ds.SetUInt16(DicomTags.Rows, 65535);
            ds.SetUInt16(DicomTags.Columns, 65535);
        }).Select(f => DicomWriter.ToBytes(f)).ToList();
        var before = GC.GetAllocatedBytesForCurrentThread();

        var error = Assert.Throws<DicomException>(() => SeriesVolumeBuilder.Build(files.Select(b => DicomReader.Read(b))));

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("65535×65535×3 voxels of 2 byte(s)", error.Message, StringComparison.Ordinal);
        Assert.Contains("over the limit of 2048 MiB per volume", error.Message, StringComparison.Ordinal);
        Assert.True(allocated < Budget, $"allocated {allocated} bytes");
    }

    [Fact]
    public void A_series_within_the_limit_whose_pixel_data_is_short_is_refused_before_the_volume_is_allocated()
    {
        // 4096×4096×40 at 2 bytes is 1.25 GiB: under the limit, so only the pixel data length check stands between the claim and the allocation.
        var positions = SyntheticSeries.AxialPositions(Enumerable.Range(0, 40).Select(i => 2.0 * i).ToArray());
        var files = SyntheticSeries.Create(2, 2, positions, customise: (_, ds) =>
        {
            ds.SetUInt16(DicomTags.Rows, 4096);
            ds.SetUInt16(DicomTags.Columns, 4096);
        });
        var before = GC.GetAllocatedBytesForCurrentThread();

        var error = Assert.Throws<DicomException>(() => SeriesVolumeBuilder.Build(files));

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("holds 8 bytes", error.Message, StringComparison.Ordinal);
        Assert.True(allocated < Budget, $"allocated {allocated} bytes");
    }

    [Fact]
    public void A_volume_over_a_configured_limit_is_refused_and_one_under_it_is_built()
    {
        var files = SyntheticSeries.Create(8, 8, SyntheticSeries.AxialPositions(0, 2, 4, 6));

        var error = Assert.Throws<DicomException>(() => SeriesVolumeBuilder.Build(files, new DicomLimits { MaxVolumeBytes = 511 }));
        var volume = SeriesVolumeBuilder.Build(files, new DicomLimits { MaxVolumeBytes = 512 }).Volume;

        Assert.Contains("8×8×4 voxels of 2 byte(s)", error.Message, StringComparison.Ordinal);
        Assert.Equal(512, volume.Data.Length);
    }

    [Fact]
    public void A_deflated_file_that_inflates_past_the_limit_is_refused()
    {
        // 256 MiB of zero pixels deflate to about 256 KB; the limit is 16 MiB.
        var limits = new DicomLimits { MaxInflatedBytes = 16L << 20 };
        var bytes = Deflated(256 << 20);
        var before = GC.GetAllocatedBytesForCurrentThread();

        var error = Assert.Throws<DicomException>(() => DicomReader.Read(bytes, limits));

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains($"inflates beyond {16L << 20} bytes, the limit for an inflated data set (MaxInflatedBytes)", error.Message, StringComparison.Ordinal);
        Assert.True(bytes.Length < 1 << 20, $"{bytes.Length} bytes");
        Assert.True(allocated < Budget, $"allocated {allocated} bytes");
    }

    [Fact]
    public void A_deflated_file_under_the_limit_is_read()
    {
        var bytes = Deflated(1 << 20);

        var file = DicomReader.Read(bytes, new DicomLimits { MaxInflatedBytes = 2L << 20 });

        Assert.Equal(1 << 20, file.Dataset[DicomTags.PixelData]!.Value.Length);
    }

    /// <summary>A deflated-transfer-syntax file whose data set carries <paramref name="pixelBytes"/> zero bytes of pixel data.</summary>
    private static byte[] Deflated(int pixelBytes)
    {
        var ds = new DicomDataset()
            .SetString(DicomTags.SOPClassUID, DicomVR.UI, SopClasses.CTImage)
            .SetString(DicomTags.SOPInstanceUID, DicomVR.UI, "1.2.826.0.1.3680043.8.498.98")
            .SetBytes(DicomTags.PixelData, DicomVR.OB, new byte[pixelBytes]);
        var plain = DicomWriter.ToBytes(DicomWriter.CreateFile(ds));
        var datasetStart = 132 + 12 + (int)DicomReader.Read(plain).Meta.GetDoubles(DicomTags.FileMetaInformationGroupLength)[0];
        using var output = new MemoryStream();
        // Preamble, "DICM" and a meta of group length and transfer syntax only (explicit VR little endian, as Part 10 requires).
        output.Write(new byte[128]);
        output.Write("DICM"u8);
        var uid = System.Text.Encoding.ASCII.GetBytes(TransferSyntaxes.DeflatedExplicitVRLittleEndian + (TransferSyntaxes.DeflatedExplicitVRLittleEndian.Length % 2 == 1 ? "\0" : ""));
        output.Write([0x02, 0x00, 0x00, 0x00, (byte)'U', (byte)'L', 4, 0]);
        output.Write(BitConverter.GetBytes(8 + uid.Length));
        output.Write([0x02, 0x00, 0x10, 0x00, (byte)'U', (byte)'I', (byte)uid.Length, 0]);
        output.Write(uid);
        using (var deflate = new DeflateStream(output, CompressionLevel.Optimal, leaveOpen: true))
        {
            deflate.Write(plain.AsSpan(datasetStart));
        }
        var bytes = output.ToArray();
        return bytes;
    }
}
