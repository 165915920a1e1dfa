using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace OrthancSeg.Dicom.Tests.Codec;

public sealed class DicomReaderTests
{
    /// <summary>Every file of the corpus the reader must accept, with pydicom as the reference.</summary>
    public static TheoryData<string> ReadableFiles =>
    [
        "CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_padded.dcm", "MR_small_RLE.dcm",
        "image_dfl.dcm", "ExplVR_LitEndNoMeta.dcm", "meta_missing_tsyntax.dcm", "no_meta_group_length.dcm",
        "empty_charset_LEI.dcm", "nested_priv_SQ.dcm", "priv_SQ.dcm", "UN_sequence.dcm", "rtplan.dcm",
        "rtstruct.dcm", "rtdose.dcm", "rtdose_1frame.dcm", "rtdose_rle.dcm", "rtdose_rle_1frame.dcm", "reportsi.dcm",
        "reportsi_with_empty_number_tags.dcm", "test-SR.dcm", "waveform_ecg.dcm", "liver_1frame.dcm", "badVR.dcm",
        "SC_rgb_small_odd.dcm", "SC_ybr_full_422_uncompressed.dcm", "SC_rgb_rle.dcm", "SC_rgb_rle_16bit.dcm",
        "SC_rgb_rle_16bit_2frame.dcm", "SC_rgb_rle_2frame.dcm", "SC_rgb_rle_32bit.dcm", "SC_rgb_rle_32bit_2frame.dcm",
        "SC_rgb_jpeg_dcmd.dcm", "JPEG2000.dcm", "JPEG2000-embedded-sequence-delimiter.dcm", "JPEG-lossy.dcm",
        "JPGExtended.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "SC_rgb_jpeg_gdcm.dcm",
        "SC_rgb_dcmtk_+eb+cy+np.dcm", "693_J2KI.dcm", "GDCMJ2K_TextGBR.dcm", "J2K_pixelrep_mismatch.dcm",
        "SC_rgb_small_odd_jpeg.dcm", "SC_jpeg_no_color_transform.dcm",
    ];

    public static TheoryData<string> BigEndianFiles =>
    [
        "ExplVR_BigEnd.dcm", "ExplVR_BigEndNoMeta.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
        "liver_expb_1frame.dcm", "rtdose_expb.dcm", "rtdose_expb_1frame.dcm",
    ];

    [Theory]
    [MemberData(nameof(ReadableFiles))]
    public void Pydicom_test_file_reads_element_by_element_like_pydicom(string name)
    {
        var path = TestFiles.Pydicom(name);

        var file = DicomReader.ReadFile(path);

        PydicomReference.AssertSameAsPydicom(file, path);
    }

    [Fact]
    public void Explicit_vr_file_reads_patient_and_pixel_data()
    {
        var file = DicomReader.ReadFile(TestFiles.Pydicom("CT_small.dcm"));

        Assert.Equal(TransferSyntaxes.ExplicitVRLittleEndian, file.TransferSyntaxUid);
        Assert.Equal("CompressedSamples^CT1", file.Dataset.GetString(DicomTags.PatientName));
        Assert.Equal("1CT1", file.Dataset.GetString(DicomTags.PatientID));
        Assert.Equal("1.3.6.1.4.1.5962.1.2.1.20040119072730.12322", file.Dataset.GetString(DicomTags.StudyInstanceUID));
        Assert.Equal(new[] { -158.135803, -179.035797, -75.699997 }, file.Dataset.GetDoubles(DicomTags.ImagePositionPatient));
        Assert.Equal(5.0, file.Dataset.GetDouble(DicomTags.SliceThickness));
        var pixels = DicomPixelData.Create(file.Dataset, file.TransferSyntaxUid);
        Assert.Equal((128, 128, 16, 1), (pixels.Rows, pixels.Columns, pixels.BitsAllocated, pixels.PixelRepresentation));
        var frame = pixels.GetFrame(0);
        // Hash and first pixels as pydicom reports them (sha256 of ds.PixelData, ds.pixel_array[0, :4]).
        Assert.Equal("7a481f6ffff833aef4d8bd54819bd8f472aaa7232090208e056c90eacf079926", Convert.ToHexStringLower(SHA256.HashData(frame.Span)));
        Assert.Equal(new short[] { 175, 180, 166, 143 }, MemoryMarshal.Cast<byte, short>(frame.Span)[..4].ToArray());
    }

    [Fact]
    public void Implicit_vr_file_reads_patient_and_pixel_data()
    {
        var file = DicomReader.ReadFile(TestFiles.Pydicom("MR_small_implicit.dcm"));
        var explicitFile = DicomReader.ReadFile(TestFiles.Pydicom("MR_small.dcm"));

        Assert.Equal(TransferSyntaxes.ImplicitVRLittleEndian, file.TransferSyntaxUid);
        Assert.Equal("CompressedSamples^MR1", file.Dataset.GetString(DicomTags.PatientName));
        Assert.Equal(DicomVR.PN, file.Dataset[DicomTags.PatientName]!.VR);
        Assert.Equal(64, file.Dataset.GetInt(DicomTags.Rows));
        Assert.Equal(new[] { -83.9063, -91.2000, 6.6406 }, file.Dataset.GetDoubles(DicomTags.ImagePositionPatient));
        var pixels = DicomPixelData.Create(file.Dataset, file.TransferSyntaxUid).GetFrame(0);
        Assert.Equal("88617aaa46138fb1b6e2a951e762d962382354d69f47f8c04d4abff2f6a6a63e", Convert.ToHexStringLower(SHA256.HashData(pixels.Span)));
        Assert.True(pixels.Span.SequenceEqual(DicomPixelData.Create(explicitFile.Dataset, explicitFile.TransferSyntaxUid).GetFrame(0).Span));
    }

    [Fact]
    public void Deflated_file_reads_attributes_and_pixels()
    {
        var file = DicomReader.ReadFile(TestFiles.Pydicom("image_dfl.dcm"));

        Assert.Equal(TransferSyntaxes.DeflatedExplicitVRLittleEndian, file.TransferSyntaxUid);
        Assert.Equal("1.3.6.1.4.1.5962.1.2.0.977067310.6001.0", file.Dataset.GetString(DicomTags.StudyInstanceUID));
        var frame = DicomPixelData.Create(file.Dataset, file.TransferSyntaxUid).GetFrame(0);
        Assert.Equal(512 * 512, frame.Length);
        Assert.Equal("1f5f1b1c1a57606a55d7e4212ee2655c8205b45e264bd55057f7388c258deef8", Convert.ToHexStringLower(SHA256.HashData(frame.Span)));
    }

    [Fact]
    public void File_without_preamble_and_meta_is_read_with_the_guessed_explicit_vr()
    {
        var file = DicomReader.ReadFile(TestFiles.Pydicom("ExplVR_LitEndNoMeta.dcm"));

        Assert.Equal(0, file.Meta.Count);
        Assert.Equal(TransferSyntaxes.ExplicitVRLittleEndian, file.TransferSyntaxUid);
        Assert.Equal("RTPLAN", file.Dataset.GetString(DicomTags.Modality));
        Assert.Equal("1.2.333.4444.5.6.7.8", file.Dataset.GetString(DicomTags.SOPInstanceUID));
    }

    [Fact]
    public void Bare_implicit_data_set_without_meta_is_read_with_the_guessed_implicit_vr()
    {
        var source = DicomReader.ReadFile(TestFiles.Pydicom("MR_small_implicit.dcm"));
        var bytes = TestFiles.PydicomBytes("MR_small_implicit.dcm");
        var datasetStart = 132 + 12 + (int)source.Meta.GetDoubles(DicomTags.FileMetaInformationGroupLength)[0];

        var file = DicomReader.Read(bytes.AsMemory(datasetStart));

        Assert.Equal(TransferSyntaxes.ImplicitVRLittleEndian, file.TransferSyntaxUid);
        DatasetAssert.Equal(source.Dataset, file.Dataset);
    }

    [Fact]
    public void File_meta_without_preamble_is_read()
    {
        var bytes = TestFiles.PydicomBytes("CT_small.dcm");

        var file = DicomReader.Read(bytes.AsMemory(132));

        Assert.Equal(TransferSyntaxes.ExplicitVRLittleEndian, file.TransferSyntaxUid);
        Assert.Equal("1.2.840.10008.5.1.4.1.1.2", file.Meta.GetString(DicomTags.MediaStorageSOPClassUID));
        DatasetAssert.Equal(DicomReader.Read(bytes).Dataset, file.Dataset);
    }

    [Fact]
    public void Implicit_data_set_under_meta_that_claims_explicit_vr_is_read_as_implicit()
    {
        var source = DicomReader.ReadFile(TestFiles.Pydicom("MR_small_implicit.dcm"));
        var bytes = TestFiles.PydicomBytes("MR_small_implicit.dcm");
        var sourceDatasetStart = 132 + 12 + (int)source.Meta.GetDoubles(DicomTags.FileMetaInformationGroupLength)[0];
        var identity = new DicomDataset()
            .SetString(DicomTags.SOPClassUID, DicomVR.UI, source.Dataset.GetString(DicomTags.SOPClassUID))
            .SetString(DicomTags.SOPInstanceUID, DicomVR.UI, source.Dataset.GetString(DicomTags.SOPInstanceUID));
        var explicitMeta = DicomWriter.ToBytes(DicomFile.Create(identity));
        var metaEnd = 144 + BinaryPrimitives.ReadInt32LittleEndian(explicitMeta.AsSpan(140));

        byte[] mislabelled = [.. explicitMeta[..metaEnd], .. bytes[sourceDatasetStart..]];

        var file = DicomReader.Read(mislabelled);

        Assert.Equal(TransferSyntaxes.ExplicitVRLittleEndian, file.Meta.GetString(DicomTags.TransferSyntaxUID));
        Assert.Equal(TransferSyntaxes.ImplicitVRLittleEndian, file.TransferSyntaxUid);
        DatasetAssert.Equal(source.Dataset, file.Dataset);
    }

    [Theory]
    [MemberData(nameof(BigEndianFiles))]
    public void Big_endian_file_is_refused_with_transcoding_advice(string name)
    {
        var error = Assert.Throws<DicomException>(() => DicomReader.ReadFile(TestFiles.Pydicom(name)));

        Assert.Equal("Explicit VR Big Endian (1.2.840.10008.1.2.2) is not supported; ask Orthanc to transcode to 1.2.840.10008.1.2.1", error.Message);
    }

    [Theory]
    [InlineData("ExplVR_BigEnd.dcm", "1.2.840.10008.1.2.2")]
    [InlineData("MR_small_jpeg_ls_lossless.dcm", "1.2.840.10008.1.2.4.80")]
    [InlineData("CT_small.dcm", "1.2.840.10008.1.2.1")]
    [InlineData("ExplVR_LitEndNoMeta.dcm", null)]
    public void The_declared_transfer_syntax_is_read_from_the_meta_even_when_the_data_set_would_be_refused(string name, string? expected)
    {
        Assert.Equal(expected, DicomReader.ReadDeclaredTransferSyntax(File.ReadAllBytes(TestFiles.Pydicom(name))));
    }

    [Theory]
    [InlineData("MR_truncated.dcm", "PixelData (7FE0,0010)", "at byte 1488")]
    [InlineData("rtplan_truncated.dcm", "(300A,00B0)", "at byte 1410")]
    [InlineData("no_meta.dcm", "(0820,0500)", "at byte 0")]
    public void Truncated_or_garbled_corpus_file_is_refused_naming_element_and_offset(string name, string element, string offset)
    {
        var error = Assert.Throws<DicomException>(() => DicomReader.ReadFile(TestFiles.Pydicom(name)));

        Assert.Contains(element, error.Message, StringComparison.Ordinal);
        Assert.Contains(offset, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Copy_truncated_inside_pixel_data_is_refused()
    {
        var bytes = TestFiles.PydicomBytes("CT_small.dcm");

        var error = Assert.Throws<DicomException>(() => DicomReader.Read(bytes.AsMemory(0, bytes.Length - 1000)));

        Assert.StartsWith("Truncated DICOM input: the value of PixelData (7FE0,0010)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Deflated_data_set_that_is_not_deflate_data_is_refused()
    {
        var bytes = TestFiles.PydicomBytes("image_dfl.dcm");
        var datasetStart = 132 + 12 + (int)DicomReader.Read(bytes).Meta.GetDoubles(DicomTags.FileMetaInformationGroupLength)[0];
        // Block type 3 is reserved in RFC 1951.
        bytes[datasetStart] = 0x07;

        var error = Assert.Throws<DicomException>(() => DicomReader.Read(bytes));

        Assert.Contains($"deflated data set starting at byte {datasetStart}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Copy_truncated_inside_the_file_meta_is_refused()
    {
        var bytes = TestFiles.PydicomBytes("CT_small.dcm");

        var error = Assert.Throws<DicomException>(() => DicomReader.Read(bytes.AsMemory(0, 150)));

        Assert.StartsWith("Truncated DICOM input", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Copy_truncated_inside_an_element_header_is_refused()
    {
        var bytes = TestFiles.PydicomBytes("CT_small.dcm");
        var pixelDataHeader = bytes.AsSpan().IndexOf(new byte[] { 0xE0, 0x7F, 0x10, 0x00, (byte)'O', (byte)'W' });
        Assert.True(pixelDataHeader > 0);

        var error = Assert.Throws<DicomException>(() => DicomReader.Read(bytes.AsMemory(0, pixelDataHeader + 5)));

        Assert.Contains($"at byte {pixelDataHeader}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Nested_sequences_are_read_item_by_item()
    {
        var file = DicomReader.ReadFile(TestFiles.Pydicom("rtplan.dcm"));

        var beams = file.Dataset.GetSequence(new DicomTag(0x300A, 0x00B0));
        Assert.Single(beams);
        var controlPoints = beams[0].GetSequence(new DicomTag(0x300A, 0x0111));
        Assert.Equal(2, controlPoints.Count);
        Assert.Equal(0.0, controlPoints[0].GetDouble(new DicomTag(0x300A, 0x011E)));
    }

    [Fact]
    public void Undefined_length_sequences_and_items_read_like_defined_ones()
    {
        using var temp = new TestFiles.TempDirectory();
        var source = TestFiles.Pydicom("rtplan.dcm");
        foreach (var syntax in new[] { "+ti", "+te" })
        {
            var undefined = temp.File($"undefined{syntax}.dcm");
            TestFiles.RunChecked("/usr/bin/dcmconv", syntax, "-e", source, undefined);
            Assert.Contains("u/l", TestFiles.RunChecked("/usr/bin/dcmdump", undefined), StringComparison.Ordinal);

            var file = DicomReader.ReadFile(undefined);

            DatasetAssert.Equal(DicomReader.ReadFile(source).Dataset, file.Dataset);
            PydicomReference.AssertSameAsPydicom(file, undefined);
        }
    }

    [Fact]
    public void Undefined_length_un_is_read_as_a_sequence_of_implicit_vr_items()
    {
        var file = DicomReader.ReadFile(TestFiles.Pydicom("UN_sequence.dcm"));

        var element = file.Dataset[new DicomTag(0x4453, 0x100C)]!;
        Assert.True(element.IsSequence);
        var series = element.Items![0].GetSequence(DicomTags.ReferencedSeriesSequence);
        Assert.Equal("1.2.840.113619.2.327.3.185221411.476.1398588726.276", series[0].GetString(DicomTags.SeriesInstanceUID));
        Assert.Equal(
            "1.2.840.113619.2.327.3.185221411.476.1398588726.278.80",
            series[0].GetSequence(new DicomTag(0x0008, 0x1199))[0].GetString(DicomTags.ReferencedSOPInstanceUID));
    }

    [Fact]
    public void Jpeg_file_reads_attributes_and_refuses_pixel_decoding()
    {
        var file = DicomReader.ReadFile(TestFiles.Pydicom("JPEG2000.dcm"));

        Assert.Equal("CompressedSamples^NM1", file.Dataset.GetString(DicomTags.PatientName));
        Assert.Equal(1024, file.Dataset.GetInt(DicomTags.Rows));
        var pixelData = file.Dataset[DicomTags.PixelData]!;
        Assert.True(pixelData.IsEncapsulated);
        Assert.True(pixelData.Fragments!.Count >= 2);
        var error = Assert.Throws<DicomException>(() => DicomPixelData.Create(file.Dataset, file.TransferSyntaxUid));
        Assert.Equal(
            "Transfer syntax 1.2.840.10008.1.2.4.91 (JPEG 2000) is compressed; the worker asks Orthanc to transcode it to Explicit VR Little Endian",
            error.Message);
    }

    [Fact]
    public void Stream_and_memory_reads_match_file_reads()
    {
        var path = TestFiles.Pydicom("CT_small.dcm");
        var expected = DicomReader.ReadFile(path).Dataset;

        using (var seekable = File.OpenRead(path))
        {
            DatasetAssert.Equal(expected, DicomReader.Read(seekable).Dataset);
        }
        using var pipe = new NonSeekableStream(File.ReadAllBytes(path));
        DatasetAssert.Equal(expected, DicomReader.Read(pipe).Dataset);
    }

    [Fact]
    public void Large_pixel_data_is_a_slice_of_the_input_buffer()
    {
        var dataset = new DicomDataset()
            .SetString(DicomTags.SOPClassUID, DicomVR.UI, SopClasses.CTImage)
            .SetString(DicomTags.SOPInstanceUID, DicomVR.UI, Implementation.NewUid())
            .SetUInt16(DicomTags.Rows, 5120)
            .SetUInt16(DicomTags.Columns, 5120)
            .SetUInt16(DicomTags.BitsAllocated, 16)
            .SetString(DicomTags.PhotometricInterpretation, DicomVR.CS, "MONOCHROME2")
            .SetNumbers(DicomTags.NumberOfFrames, DicomVR.IS, [2]);
        dataset.Set(new DicomElement(DicomTags.PixelData, DicomVR.OW, new byte[100 * 1024 * 1024]));
        var bytes = DicomWriter.ToBytes(DicomFile.Create(dataset));

        var file = DicomReader.Read(bytes);

        var value = file.Dataset[DicomTags.PixelData]!.Value;
        Assert.True(MemoryMarshal.TryGetArray(value, out var segment));
        Assert.Same(bytes, segment.Array);
        Assert.Equal(bytes.Length - value.Length, segment.Offset);
        var frame = DicomPixelData.Create(file.Dataset, file.TransferSyntaxUid).GetFrame(1);
        Assert.True(MemoryMarshal.TryGetArray(frame, out var frameSegment));
        Assert.Same(bytes, frameSegment.Array);
    }

    private sealed class NonSeekableStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();
    }
}
