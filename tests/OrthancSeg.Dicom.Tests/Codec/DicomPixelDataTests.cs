using System.Buffers.Binary;

namespace OrthancSeg.Dicom.Tests.Codec;

public sealed class DicomPixelDataTests
{
    [Theory]
    [InlineData("MR_small_RLE.dcm", "MR_small.dcm")]
    [InlineData("rtdose_rle.dcm", "rtdose.dcm")]
    [InlineData("rtdose_rle_1frame.dcm", "rtdose_1frame.dcm")]
    public void Rle_file_decodes_to_the_native_pixels_of_its_uncompressed_twin(string rleName, string nativeName)
    {
        var rle = Pixels(rleName);
        var native = Pixels(nativeName);

        Assert.Equal(native.FrameCount, rle.FrameCount);
        for (var f = 0; f < rle.FrameCount; f++)
        {
            Assert.True(native.GetFrame(f).Span.SequenceEqual(rle.GetFrame(f).Span), $"frame {f} differs");
        }
    }

    [Theory]
    [InlineData("SC_rgb_rle.dcm")]
    [InlineData("SC_rgb_rle_2frame.dcm")]
    [InlineData("SC_rgb_rle_16bit.dcm")]
    [InlineData("SC_rgb_rle_16bit_2frame.dcm")]
    [InlineData("SC_rgb_rle_32bit.dcm")]
    [InlineData("SC_rgb_rle_32bit_2frame.dcm")]
    public void Rgb_rle_file_decodes_to_the_pixels_pydicom_decodes(string name)
    {
        var path = TestFiles.Pydicom(name);
        var pixels = Pixels(name);
        // pixel_array is (frames, rows, columns, samples), i.e. PlanarConfiguration 0, which these files declare.
        var expected = Convert.FromHexString(TestFiles.RunChecked(TestFiles.Python, "-c",
            "import sys, pydicom; print(pydicom.dcmread(sys.argv[1]).pixel_array.tobytes().hex())", path).Trim());

        Assert.Equal(0, pixels.PlanarConfiguration);
        var actual = Enumerable.Range(0, pixels.FrameCount).SelectMany(f => pixels.GetFrame(f).ToArray()).ToArray();
        Assert.Equal(expected.Length, actual.Length);
        Assert.True(expected.AsSpan().SequenceEqual(actual));
    }

    [Fact]
    public void One_bit_segmentation_unpacks_like_pydicom()
    {
        var path = TestFiles.Pydicom("liver_1frame.dcm");
        var expected = Convert.FromHexString(TestFiles.RunChecked(TestFiles.Python, "-c",
            "import sys, pydicom; print(pydicom.dcmread(sys.argv[1]).pixel_array.tobytes().hex())", path).Trim());

        var pixels = Pixels("liver_1frame.dcm");

        Assert.Equal(1, pixels.BitsAllocated);
        Assert.Equal(BitPacking.Contiguous, pixels.GuessBitPacking());
        Assert.True(expected.AsSpan().SequenceEqual(pixels.GetFrame(0).Span));
        Assert.Equal(36233, pixels.GetFrame(0).ToArray().Sum(b => b));
    }

    [Fact]
    public void One_bit_frames_that_share_bytes_unpack_from_the_standard_contiguous_packing()
    {
        var frames = OneBitFrames();
        var dataset = OneBitDataset(PackContiguous(frames));

        var pixels = DicomPixelData.Create(dataset, TransferSyntaxes.ExplicitVRLittleEndian);

        Assert.Equal(BitPacking.Contiguous, pixels.GuessBitPacking());
        for (var f = 0; f < frames.Length; f++)
        {
            Assert.Equal(frames[f], pixels.GetFrame(f).ToArray());
        }
    }

    [Fact]
    public void One_bit_frames_packed_per_frame_by_cornerstone_unpack_with_that_packing()
    {
        var frames = OneBitFrames();
        var dataset = OneBitDataset(frames.SelectMany(f => PackContiguous([f])).ToArray());

        var pixels = DicomPixelData.Create(dataset, TransferSyntaxes.ExplicitVRLittleEndian);

        Assert.Equal(BitPacking.PerFrameByteAligned, pixels.GuessBitPacking());
        for (var f = 0; f < frames.Length; f++)
        {
            Assert.Equal(frames[f], pixels.GetFrame(f, BitPacking.PerFrameByteAligned).ToArray());
        }
        // Read with the standard packing, frames after the first come out shifted: the variant matters.
        Assert.NotEqual(frames[1], pixels.GetFrame(1).ToArray());
    }

    [Fact]
    public void One_bit_data_stored_a_byte_per_pixel_unpacks_to_zero_and_one()
    {
        var frames = OneBitFrames();
        var dataset = OneBitDataset(frames.SelectMany(f => f.Select(p => (byte)(p * 255))).ToArray());

        var pixels = DicomPixelData.Create(dataset, TransferSyntaxes.ExplicitVRLittleEndian);

        Assert.Equal(BitPacking.Unpacked, pixels.GuessBitPacking());
        Assert.Equal(frames[2], pixels.GetFrame(2, BitPacking.Unpacked).ToArray());
    }

    [Theory]
    [InlineData(8, 1, 0, 7, 13)]
    [InlineData(8, 3, 0, 5, 3)]
    [InlineData(8, 3, 1, 4, 9)]
    [InlineData(16, 1, 0, 33, 1)]
    [InlineData(16, 3, 0, 2, 65)]
    [InlineData(32, 1, 0, 6, 5)]
    [InlineData(32, 3, 1, 3, 7)]
    public void Rle_encoder_output_decodes_back_to_the_frame(int bitsAllocated, int samples, int planar, int rows, int columns)
    {
        var frame = RandomFrame(rows * columns * samples * (bitsAllocated / 8), seed: rows * 1000 + columns);

        var encoded = RleCodec.Encode(frame, rows, columns, samples, bitsAllocated, planar);

        Assert.Equal(0, encoded.Length % 2);
        Assert.Equal(samples * bitsAllocated / 8, BinaryPrimitives.ReadInt32LittleEndian(encoded));
        Assert.Equal(frame, RleCodec.Decode(encoded, rows, columns, samples, bitsAllocated, planar));
    }

    [Fact]
    public void Rle_encoder_compresses_runs()
    {
        var frame = new byte[256 * 256];
        frame.AsSpan(1000, 5000).Fill(1);

        var encoded = RleCodec.Encode(frame, 256, 256, 1, 8);

        Assert.True(encoded.Length < 2000, $"{encoded.Length} bytes");
        Assert.Equal(frame, RleCodec.Decode(encoded, 256, 256, 1, 8));
    }

    [Fact]
    public void Rle_file_we_encode_is_decoded_identically_by_dcmtk_and_by_us()
    {
        using var temp = new TestFiles.TempDirectory();
        const int Rows = 7;
        const int Columns = 9;
        var frames = Enumerable.Range(0, 3).Select(f => RandomFrame(Rows * Columns * 2, f, runs: true)).ToArray();
        var dataset = MonochromeDataset(Rows, Columns, 16, frames.Length);
        var fragments = frames.Select(f => RleCodec.Encode(f, Rows, Columns, 1, 16)).ToArray();
        var rlePath = temp.File("rle.dcm");
        File.WriteAllBytes(rlePath, EncapsulatedFiles.Rle(dataset, fragments, EncapsulatedFiles.OffsetTable(fragments, 0, 1, 2)));
        var nativePath = temp.File("native.dcm");

        TestFiles.RunChecked("/usr/bin/dcmdrle", rlePath, nativePath);

        var ours = DicomReader.ReadFile(rlePath);
        var oursPixels = DicomPixelData.Create(ours.Dataset, ours.TransferSyntaxUid);
        var dcmtk = DicomReader.ReadFile(nativePath);
        var dcmtkPixels = DicomPixelData.Create(dcmtk.Dataset, dcmtk.TransferSyntaxUid);
        for (var f = 0; f < frames.Length; f++)
        {
            Assert.Equal(frames[f], dcmtkPixels.GetFrame(f).ToArray());
            Assert.Equal(frames[f], oursPixels.GetFrame(f).ToArray());
        }
    }

    [Fact]
    public void Rle_file_dcmtk_encodes_decodes_to_the_native_frames()
    {
        using var temp = new TestFiles.TempDirectory();
        var nativePath = temp.File("native.dcm");
        var rlePath = temp.File("rle.dcm");
        var source = DicomReader.ReadFile(TestFiles.Pydicom("SC_rgb_small_odd.dcm"));
        File.WriteAllBytes(nativePath, DicomWriter.ToBytes(source));

        TestFiles.RunChecked("/usr/bin/dcmcrle", nativePath, rlePath);

        var rle = DicomReader.ReadFile(rlePath);
        Assert.Equal(TransferSyntaxes.RleLossless, rle.TransferSyntaxUid);
        var expected = DicomPixelData.Create(source.Dataset, source.TransferSyntaxUid).GetFrame(0);
        var actual = DicomPixelData.Create(rle.Dataset, rle.TransferSyntaxUid).GetFrame(0);
        Assert.True(expected.Span.SequenceEqual(actual.Span));
    }

    [Fact]
    public void Rle_frame_split_over_fragments_is_joined_by_the_offset_table()
    {
        const int Rows = 16;
        const int Columns = 16;
        var frames = Enumerable.Range(0, 2).Select(f => RandomFrame(Rows * Columns, f + 10, runs: true)).ToArray();
        var first = RleCodec.Encode(frames[0], Rows, Columns, 1, 8);
        var second = RleCodec.Encode(frames[1], Rows, Columns, 1, 8);
        // Frame 0 in two fragments, frame 1 in one.
        byte[][] fragments = [first[..40], first[40..], second];
        var file = DicomReader.Read(EncapsulatedFiles.Rle(MonochromeDataset(Rows, Columns, 8, 2), fragments, EncapsulatedFiles.OffsetTable(fragments, 0, 2)));

        var pixels = DicomPixelData.Create(file.Dataset, file.TransferSyntaxUid);

        Assert.Equal(frames[0], pixels.GetFrame(0).ToArray());
        Assert.Equal(frames[1], pixels.GetFrame(1).ToArray());
    }

    [Fact]
    public void Rle_fragments_that_cannot_be_assigned_to_frames_are_refused()
    {
        var frame = RandomFrame(64, 1, runs: true);
        var encoded = RleCodec.Encode(frame, 8, 8, 1, 8);
        byte[][] fragments = [encoded[..40], encoded[40..], encoded];
        var file = DicomReader.Read(EncapsulatedFiles.Rle(MonochromeDataset(8, 8, 8, 2), fragments));

        var pixels = DicomPixelData.Create(file.Dataset, file.TransferSyntaxUid);

        var error = Assert.Throws<DicomException>(() => pixels.GetFrame(0));
        Assert.Contains("no Basic Offset Table", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, "declares 0 segments")]
    [InlineData(16, "declares 16 segments")]
    [InlineData(2, "need 1")]
    public void Rle_header_with_a_wrong_segment_count_is_refused(int segments, string message)
    {
        var encoded = RleCodec.Encode(new byte[64], 8, 8, 1, 8);
        BinaryPrimitives.WriteInt32LittleEndian(encoded, segments);

        var error = Assert.Throws<DicomException>(() => RleCodec.Decode(encoded, 8, 8, 1, 8));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(10)]
    [InlineData(100000)]
    public void Rle_segment_offset_outside_the_frame_is_refused(int offset)
    {
        var encoded = RleCodec.Encode(new byte[64], 8, 8, 1, 8);
        BinaryPrimitives.WriteInt32LittleEndian(encoded.AsSpan(4), offset);

        var error = Assert.Throws<DicomException>(() => RleCodec.Decode(encoded, 8, 8, 1, 8));

        Assert.Contains("RLE segment 0 spans", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rle_segment_that_ends_early_is_refused()
    {
        var encoded = RleCodec.Encode(RandomFrame(64, 3), 8, 8, 1, 8);

        var error = Assert.Throws<DicomException>(() => RleCodec.Decode(encoded.AsSpan(0, encoded.Length - 20), 8, 8, 1, 8));

        Assert.Contains("RLE segment 0", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("JPEG-lossy.dcm", "1.2.840.10008.1.2.4.51 (JPEG Extended (Process 2 & 4))")]
    [InlineData("SC_rgb_jpeg_dcmtk.dcm", "1.2.840.10008.1.2.4.50 (JPEG Baseline (Process 1))")]
    [InlineData("MR_small_jpeg_ls_lossless.dcm", "1.2.840.10008.1.2.4.80 (JPEG-LS Lossless)")]
    [InlineData("MR_small_jp2klossless.dcm", "1.2.840.10008.1.2.4.90 (JPEG 2000 (Lossless Only))")]
    public void Compressed_pixel_data_is_refused_with_transcoding_advice(string name, string syntax)
    {
        var file = DicomReader.ReadFile(TestFiles.Pydicom(name));

        var error = Assert.Throws<DicomException>(() => DicomPixelData.Create(file.Dataset, file.TransferSyntaxUid));

        Assert.Equal($"Transfer syntax {syntax} is compressed; the worker asks Orthanc to transcode it to Explicit VR Little Endian", error.Message);
    }

    [Fact]
    public void Native_pixel_data_shorter_than_its_frames_is_refused()
    {
        var dataset = MonochromeDataset(4, 4, 16, 2);
        dataset.Set(new DicomElement(DicomTags.PixelData, DicomVR.OW, new byte[62]));

        var error = Assert.Throws<DicomException>(() => DicomPixelData.Create(dataset, TransferSyntaxes.ExplicitVRLittleEndian));

        Assert.Contains("holds 62 bytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bit_packing_other_than_the_standard_is_refused_for_byte_sized_samples()
    {
        var pixels = Pixels("CT_small.dcm");

        Assert.Throws<ArgumentException>(() => pixels.GetFrame(0, BitPacking.PerFrameByteAligned));
        Assert.Throws<InvalidOperationException>(() => pixels.GuessBitPacking());
    }

    [Fact]
    public void Pixel_module_attributes_are_exposed()
    {
        var pixels = Pixels("rtdose.dcm");

        Assert.Equal((10, 10, 15, 1), (pixels.Rows, pixels.Columns, pixels.FrameCount, pixels.SamplesPerPixel));
        Assert.Equal((32, 32, 0, "MONOCHROME2"), (pixels.BitsAllocated, pixels.BitsStored, pixels.PixelRepresentation, pixels.PhotometricInterpretation));
        Assert.Equal(400, pixels.FrameLength);
        Assert.Throws<ArgumentOutOfRangeException>(() => pixels.GetFrame(15));
    }

    [Fact]
    public void Ybr_full_422_frame_holds_two_samples_per_pixel()
    {
        var pixels = Pixels("SC_ybr_full_422_uncompressed.dcm");

        Assert.Equal(100 * 100 * 2, pixels.GetFrame(0).Length);
    }

    private static DicomPixelData Pixels(string name)
    {
        var file = DicomReader.ReadFile(TestFiles.Pydicom(name));
        return DicomPixelData.Create(file.Dataset, file.TransferSyntaxUid);
    }

    private static DicomDataset MonochromeDataset(int rows, int columns, int bitsAllocated, int frames)
    {
        var dataset = new DicomDataset()
            .SetString(DicomTags.SOPClassUID, DicomVR.UI, SopClasses.CTImage)
            .SetString(DicomTags.SOPInstanceUID, DicomVR.UI, "1.2.3.4.5")
            .SetNumbers(DicomTags.NumberOfFrames, DicomVR.IS, [frames])
            .SetUInt16(DicomTags.SamplesPerPixel, 1)
            .SetString(DicomTags.PhotometricInterpretation, DicomVR.CS, "MONOCHROME2")
            .SetUInt16(DicomTags.Rows, (ushort)rows)
            .SetUInt16(DicomTags.Columns, (ushort)columns)
            .SetUInt16(DicomTags.BitsAllocated, (ushort)bitsAllocated)
            .SetUInt16(DicomTags.BitsStored, (ushort)bitsAllocated)
            .SetUInt16(DicomTags.HighBit, (ushort)(bitsAllocated - 1))
            .SetUInt16(DicomTags.PixelRepresentation, 0);
        return dataset;
    }

    /// <summary>
    /// Three 3x3 frames: 9 pixels, so frames share bytes in the contiguous packing (4 bytes) and the per-frame
    /// packing needs a different length (6 bytes), which is what tells them apart.
    /// </summary>
    private static byte[][] OneBitFrames()
    {
        var random = new Random(7);
        return Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, 9).Select(_ => (byte)random.Next(2)).ToArray()).ToArray();
    }

    private static DicomDataset OneBitDataset(byte[] pixelData)
    {
        var dataset = MonochromeDataset(3, 3, 1, 3);
        dataset.SetBytes(DicomTags.PixelData, DicomVR.OB, pixelData);
        return dataset;
    }

    /// <summary>LSB-first bit packing of frames concatenated (dcmjs BitArray.pack, highdicom pack_bits).</summary>
    private static byte[] PackContiguous(byte[][] frames)
    {
        var bits = frames.SelectMany(f => f).ToArray();
        var packed = new byte[(bits.Length + 7) / 8];
        for (var i = 0; i < bits.Length; i++)
        {
            packed[i / 8] |= (byte)(bits[i] << (i % 8));
        }
        return packed;
    }

    private static byte[] RandomFrame(int length, int seed, bool runs = false)
    {
        var random = new Random(seed);
        var frame = new byte[length];
        random.NextBytes(frame);
        if (runs)
        {
            // Long runs and literals mixed, as in real images and masks.
            for (var i = 0; i < length; i += random.Next(1, 300))
            {
                frame.AsSpan(i, Math.Min(length - i, random.Next(1, 200))).Fill((byte)random.Next(3));
            }
        }
        return frame;
    }
}
