using System.Buffers.Binary;
using System.Text.Json;

namespace OrthancSeg.Dicom.Tests.Codec;

public sealed class DicomWriterTests
{
    /// <summary>The native files of the corpus: the writer writes native pixel data only.</summary>
    public static TheoryData<string> NativeFiles =>
    [
        "CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_padded.dcm", "image_dfl.dcm",
        "ExplVR_LitEndNoMeta.dcm", "no_meta_group_length.dcm", "empty_charset_LEI.dcm", "nested_priv_SQ.dcm",
        "priv_SQ.dcm", "rtplan.dcm", "rtstruct.dcm", "rtdose.dcm", "rtdose_1frame.dcm", "reportsi.dcm",
        "reportsi_with_empty_number_tags.dcm", "test-SR.dcm", "waveform_ecg.dcm", "liver_1frame.dcm", "badVR.dcm",
        "SC_rgb_small_odd.dcm", "SC_ybr_full_422_uncompressed.dcm", "SC_rgb_jpeg_dcmd.dcm",
    ];

    [Theory]
    [MemberData(nameof(NativeFiles))]
    public void Native_corpus_file_survives_read_write_read_unchanged(string name)
    {
        var original = WithSopIdentity(DicomReader.ReadFile(TestFiles.Pydicom(name)));

        var written = DicomReader.Read(DicomWriter.ToBytes(original));

        Assert.Equal(TransferSyntaxes.ExplicitVRLittleEndian, written.TransferSyntaxUid);
        DatasetAssert.Equal(original.Dataset, written.Dataset);
    }

    [Theory]
    [MemberData(nameof(NativeFiles))]
    public void Rewritten_corpus_file_reads_in_pydicom_as_we_read_it(string name)
    {
        using var temp = new TestFiles.TempDirectory();
        var path = temp.File(name);
        File.WriteAllBytes(path, DicomWriter.ToBytes(WithSopIdentity(DicomReader.ReadFile(TestFiles.Pydicom(name)))));

        PydicomReference.AssertSameAsPydicom(DicomReader.ReadFile(path), path);
    }

    [Theory]
    [InlineData("CT_small.dcm")]
    [InlineData("MR_small_implicit.dcm")]
    [InlineData("image_dfl.dcm")]
    [InlineData("rtplan.dcm")]
    [InlineData("rtstruct.dcm")]
    [InlineData("rtdose.dcm")]
    [InlineData("test-SR.dcm")]
    [InlineData("waveform_ecg.dcm")]
    [InlineData("liver_1frame.dcm")]
    [InlineData("priv_SQ.dcm")]
    [InlineData("SC_rgb_small_odd.dcm")]
    public void Rewritten_corpus_file_is_read_by_dcmdump_without_warnings(string name)
    {
        using var temp = new TestFiles.TempDirectory();
        var path = temp.File(name);
        File.WriteAllBytes(path, DicomWriter.ToBytes(DicomReader.ReadFile(TestFiles.Pydicom(name))));

        var (exitCode, stdout, stderr) = TestFiles.Run("/usr/bin/dcmdump", path);

        Assert.True(exitCode == 0 && stderr.Length == 0, stderr);
        Assert.DoesNotContain("u/l", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Written_segmentation_is_read_by_dcmdump_without_warnings()
    {
        using var temp = new TestFiles.TempDirectory();
        var path = temp.File("seg.dcm");
        File.WriteAllBytes(path, DicomWriter.ToBytes(DicomFile.Create(SampleDatasets.Segmentation())));

        var (exitCode, stdout, stderr) = TestFiles.Run("/usr/bin/dcmdump", "-dc", "+U8", path);

        Assert.True(exitCode == 0, stderr);
        Assert.True(stderr.Length == 0, stderr);
        Assert.DoesNotContain("u/l", stdout, StringComparison.Ordinal);
        Assert.Contains("(0002,0010) UI =LittleEndianExplicit", stdout, StringComparison.Ordinal);
        // dcmdump shows values with their padding.
        Assert.Contains("(0010,0010) PN [Müller^Jürgen ]", stdout, StringComparison.Ordinal);
        Assert.Contains("(0008,0008) CS [DERIVED\\PRIMARY ]", stdout, StringComparison.Ordinal);
        Assert.Contains("(0020,9165) AT (0062,000b)\\(0020,9113)", stdout, StringComparison.Ordinal);
        Assert.Contains("(0062,000d) US 21169\\18417\\37604", stdout, StringComparison.Ordinal);
        Assert.Contains("(0008,9124) SQ (Sequence with explicit length #=0)", stdout, StringComparison.Ordinal);
        Assert.Contains("(5200,9230) SQ (Sequence with explicit length #=3)", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Written_segmentation_reads_in_pydicom_with_the_same_values()
    {
        using var temp = new TestFiles.TempDirectory();
        var path = temp.File("seg.dcm");
        var dataset = SampleDatasets.Segmentation();
        File.WriteAllBytes(path, DicomWriter.ToBytes(DicomFile.Create(dataset)));
        const string Script = """
            import json, sys
            import pydicom
            ds = pydicom.dcmread(sys.argv[1])
            print(json.dumps({
                "name": str(ds.PatientName),
                "imageType": list(ds.ImageType),
                "spacing": [float(v) for v in ds.PixelSpacing],
                "labels": [s.SegmentLabel for s in ds.SegmentSequence],
                "types": [s.SegmentedPropertyTypeCodeSequence[0].CodeValue for s in ds.SegmentSequence],
                "cielab": list(ds.SegmentSequence[1].RecommendedDisplayCIELabValue),
                "derivation": len(ds.DerivationImageSequence),
                "positions": [[float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient] for f in ds.PerFrameFunctionalGroupsSequence],
                "indexes": [list(f.FrameContentSequence[0].DimensionIndexValues) for f in ds.PerFrameFunctionalGroupsSequence],
                "pointers": [str(p) for p in ds.DimensionIndexSequence[0].DimensionIndexPointer],
                "pixels": ds.pixel_array.tobytes().hex(),
                "groupLength": ds.file_meta.FileMetaInformationGroupLength,
                "mediaClass": ds.file_meta.MediaStorageSOPClassUID,
                "mediaInstance": ds.file_meta.MediaStorageSOPInstanceUID,
                "implementation": ds.file_meta.ImplementationClassUID,
            }))
            """;

        var json = JsonDocument.Parse(TestFiles.RunChecked(TestFiles.Python, "-c", Script, path)).RootElement;

        Assert.Equal("Müller^Jürgen", json.GetProperty("name").GetString());
        Assert.Equal(["DERIVED", "PRIMARY"], Strings(json, "imageType"));
        Assert.Equal([0.5, 0.703125], json.GetProperty("spacing").EnumerateArray().Select(v => v.GetDouble()));
        Assert.Equal(["Liver", "Tumour"], Strings(json, "labels"));
        Assert.Equal(["10200004", "108369006"], Strings(json, "types"));
        Assert.Equal([21169, 18417, 37604], json.GetProperty("cielab").EnumerateArray().Select(v => v.GetInt32()));
        Assert.Equal(0, json.GetProperty("derivation").GetInt32());
        Assert.Equal(-70.7, json.GetProperty("positions")[2][2].GetDouble());
        Assert.Equal([1, 3], json.GetProperty("indexes")[2].EnumerateArray().Select(v => v.GetInt32()));
        Assert.Equal(["(0062,000B)", "(0020,9113)"], Strings(json, "pointers").Select(p => p.Replace(" ", "", StringComparison.Ordinal).ToUpperInvariant()));
        Assert.Equal(Convert.ToHexStringLower(dataset[DicomTags.PixelData]!.Value.Span), json.GetProperty("pixels").GetString());
        Assert.Equal(SopClasses.Segmentation, json.GetProperty("mediaClass").GetString());
        Assert.Equal("1.2.826.0.1.3680043.8.498.123", json.GetProperty("mediaInstance").GetString());
        Assert.Equal(Implementation.ClassUid, json.GetProperty("implementation").GetString());
        PydicomReference.AssertSameAsPydicom(DicomReader.ReadFile(path), path);
    }

    [Fact]
    public void Meta_group_length_counts_the_meta_elements_after_it()
    {
        var bytes = DicomWriter.ToBytes(DicomFile.Create(SampleDatasets.Segmentation()));

        Assert.Equal("DICM"u8.ToArray(), bytes[128..132]);
        Assert.Equal(new byte[] { 0x02, 0x00, 0x00, 0x00, (byte)'U', (byte)'L', 4, 0 }, bytes[132..140]);
        var groupLength = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(140));
        var firstDatasetElement = 144 + (int)groupLength;
        // The group length ends exactly where the last meta element (ImplementationVersionName, 8 + 12 bytes) ends.
        Assert.Equal(new byte[] { 0x02, 0x00, 0x13, 0x00, (byte)'S', (byte)'H' }, bytes[(firstDatasetElement - 20)..(firstDatasetElement - 14)]);
        Assert.Equal(0x0008, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(firstDatasetElement)));
        var meta = DicomReader.Read(bytes).Meta;
        Assert.Equal(new byte[] { 0, 1 }, meta[DicomTags.FileMetaInformationVersion]!.Value.ToArray());
        Assert.Equal(TransferSyntaxes.ExplicitVRLittleEndian, meta.GetString(DicomTags.TransferSyntaxUID));
        Assert.Equal(Implementation.VersionName, meta.GetString(DicomTags.ImplementationVersionName));
    }

    [Fact]
    public void Meta_follows_the_data_set_edited_after_reading()
    {
        var file = DicomReader.ReadFile(TestFiles.Pydicom("MR_small_implicit.dcm"));
        file.Dataset.SetString(DicomTags.SOPInstanceUID, DicomVR.UI, "1.2.826.0.1.3680043.8.498.77");

        var meta = DicomReader.Read(DicomWriter.ToBytes(file)).Meta;

        Assert.Equal("1.2.826.0.1.3680043.8.498.77", meta.GetString(DicomTags.MediaStorageSOPInstanceUID));
        Assert.Equal(TransferSyntaxes.ExplicitVRLittleEndian, meta.GetString(DicomTags.TransferSyntaxUID));
        Assert.Equal(Implementation.ClassUid, meta.GetString(DicomTags.ImplementationClassUID));
    }

    [Fact]
    public void Odd_values_are_padded_with_their_vr_padding_byte()
    {
        var dataset = new DicomDataset()
            .SetString(DicomTags.SOPClassUID, DicomVR.UI, "1.2.3")
            .SetString(DicomTags.SOPInstanceUID, DicomVR.UI, "1.2.345")
            .Set(new DicomElement(DicomTags.PatientName, DicomVR.PN, "Doe^Ann"u8.ToArray()))
            .Set(new DicomElement(DicomTags.StudyInstanceUID, DicomVR.UI, "1.2.3"u8.ToArray()))
            .Set(new DicomElement(DicomTags.PixelData, DicomVR.OB, new byte[] { 7, 8, 9 }));

        var read = DicomReader.Read(DicomWriter.ToBytes(DicomFile.Create(dataset))).Dataset;

        Assert.Equal("Doe^Ann "u8.ToArray(), read[DicomTags.PatientName]!.Value.ToArray());
        Assert.Equal("1.2.3\0"u8.ToArray(), read[DicomTags.StudyInstanceUID]!.Value.ToArray());
        Assert.Equal(new byte[] { 7, 8, 9, 0 }, read[DicomTags.PixelData]!.Value.ToArray());
    }

    [Fact]
    public void Stream_output_equals_byte_array_output()
    {
        var file = DicomFile.Create(SampleDatasets.Segmentation());
        using var stream = new MemoryStream();

        DicomWriter.Write(file, stream);

        Assert.Equal(DicomWriter.ToBytes(file), stream.ToArray());
    }

    [Fact]
    public void Encapsulated_pixel_data_is_refused_before_anything_is_written()
    {
        var file = DicomReader.ReadFile(TestFiles.Pydicom("JPEG2000.dcm"));
        using var stream = new MemoryStream();

        var error = Assert.Throws<DicomException>(() => DicomWriter.Write(file, stream));

        Assert.Contains("encapsulated", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, stream.Length);
    }

    [Fact]
    public void Data_set_without_sop_instance_uid_cannot_become_a_file()
    {
        var dataset = new DicomDataset().SetString(DicomTags.SOPClassUID, DicomVR.UI, SopClasses.CTImage);

        var error = Assert.Throws<DicomException>(() => DicomFile.Create(dataset));

        Assert.Contains("SOPInstanceUID", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Item_that_contains_itself_is_refused_instead_of_overflowing_the_stack()
    {
        var dataset = new DicomDataset()
            .SetString(DicomTags.SOPClassUID, DicomVR.UI, "1.2.3")
            .SetString(DicomTags.SOPInstanceUID, DicomVR.UI, "1.2.345");
        var item = new DicomDataset();
        item.SetSequence(DicomTags.SegmentSequence, item);
        dataset.SetSequence(DicomTags.SegmentSequence, item);

        var error = Assert.Throws<DicomException>(() => DicomWriter.ToBytes(DicomFile.Create(dataset)));

        Assert.Contains("deeper than 64 levels", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Short_length_value_longer_than_65534_bytes_is_refused()
    {
        var dataset = new DicomDataset()
            .SetString(DicomTags.SOPClassUID, DicomVR.UI, "1.2.3")
            .SetString(DicomTags.SOPInstanceUID, DicomVR.UI, "1.2.345")
            .SetString(DicomTags.PatientID, DicomVR.LO, new string('x', 70000));

        var error = Assert.Throws<DicomException>(() => DicomWriter.ToBytes(DicomFile.Create(dataset)));

        Assert.Contains("PatientID", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A few corpus files are fragments without SOP Class/Instance UID, which a Part 10 file must carry (the writer
    /// refuses them, see Data_set_without_sop_instance_uid_cannot_become_a_file); they get an identity to be written.
    /// </summary>
    private static DicomFile WithSopIdentity(DicomFile file)
    {
        if (file.Dataset.GetString(DicomTags.SOPClassUID) is null && file.Meta.GetString(DicomTags.MediaStorageSOPClassUID) is null)
        {
            file.Dataset.SetString(DicomTags.SOPClassUID, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.7");
            file.Dataset.SetString(DicomTags.SOPInstanceUID, DicomVR.UI, "1.2.3.4.5.6.7");
        }
        return file;
    }

    private static string[] Strings(JsonElement json, string name) => json.GetProperty(name).EnumerateArray().Select(v => v.GetString()!).ToArray();
}
