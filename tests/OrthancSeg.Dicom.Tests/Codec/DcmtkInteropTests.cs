using System.Buffers.Binary;

namespace OrthancSeg.Dicom.Tests.Codec;

/// <summary>Files written by DCMTK, the toolkit Orthanc itself is built on, read as DCMTK meant them.</summary>
public sealed class DcmtkInteropTests
{
    private const string Dump = """
        (0008,0008) CS [ORIGINAL\PRIMARY\AXIAL]
        (0008,0016) UI [1.2.840.10008.5.1.4.1.1.2]
        (0008,0018) UI [1.2.3.4.5.67]
        (0008,0060) CS [CT]
        (0008,1115) SQ (Sequence with undefined length)
          (fffe,e000) na (Item with undefined length)
            (0008,114a) SQ (Sequence with undefined length)
              (fffe,e000) na (Item with undefined length)
                (0008,1150) UI [1.2.840.10008.5.1.4.1.1.2]
                (0008,1155) UI [1.2.3.4.5.6.7]
              (fffe,e00d) na (ItemDelimitationItem)
              (fffe,e000) na (Item with undefined length)
                (0008,1155) UI [1.2.3.4.5.6.8]
              (fffe,e00d) na (ItemDelimitationItem)
            (fffe,e0dd) na (SequenceDelimitationItem)
            (0020,000e) UI [1.2.3.99]
          (fffe,e00d) na (ItemDelimitationItem)
        (fffe,e0dd) na (SequenceDelimitationItem)
        (0010,0010) PN [Odd^Nam]
        (0010,0020) LO [ABC]
        (0018,0050) DS [2.5]
        (0020,0032) DS [-100.5\-99.25\12]
        (0020,9157) UL 1\2\3
        (0028,0002) US 1
        (0028,0004) CS [MONOCHROME2]
        (0028,0010) US 2
        (0028,0011) US 3
        (0028,0100) US 16
        (0028,0101) US 16
        (0028,0102) US 15
        (0028,0103) US 1
        (0028,0106) US 65535
        (7fe0,0010) OW 0001\0002\0003\0004\0005\ffff
        """;

    [Theory]
    [InlineData("+te", "+e", TransferSyntaxes.ExplicitVRLittleEndian)]
    [InlineData("+te", "-e", TransferSyntaxes.ExplicitVRLittleEndian)]
    [InlineData("+ti", "+e", TransferSyntaxes.ImplicitVRLittleEndian)]
    [InlineData("+ti", "-e", TransferSyntaxes.ImplicitVRLittleEndian)]
    [InlineData("+td", "-e", TransferSyntaxes.DeflatedExplicitVRLittleEndian)]
    public void File_written_by_dump2dcm_reads_with_its_values(string syntax, string lengths, string expectedSyntax)
    {
        using var temp = new TestFiles.TempDirectory();
        var dumpPath = temp.File("in.dump");
        File.WriteAllText(dumpPath, Dump);
        var path = temp.File("out.dcm");
        TestFiles.RunChecked("/usr/bin/dump2dcm", syntax, lengths, dumpPath, path);

        var file = DicomReader.ReadFile(path);

        Assert.Equal(expectedSyntax, file.TransferSyntaxUid);
        var dataset = file.Dataset;
        Assert.Equal(["ORIGINAL", "PRIMARY", "AXIAL"], dataset.GetStrings(DicomTags.ImageType));
        Assert.Equal("Odd^Nam", dataset.GetString(DicomTags.PatientName));
        Assert.Equal("ABC", dataset.GetString(DicomTags.PatientID));
        Assert.Equal([-100.5, -99.25, 12], dataset.GetDoubles(DicomTags.ImagePositionPatient));
        Assert.Equal([1.0, 2, 3], dataset.GetDoubles(DicomTags.DimensionIndexValues));
        var series = Assert.Single(dataset.GetSequence(DicomTags.ReferencedSeriesSequence));
        Assert.Equal("1.2.3.99", series.GetString(DicomTags.SeriesInstanceUID));
        var instances = series.GetSequence(DicomTags.ReferencedInstanceSequence);
        Assert.Equal(["1.2.3.4.5.6.7", "1.2.3.4.5.6.8"], instances.Select(i => i.GetString(DicomTags.ReferencedSOPInstanceUID)));
        // Signed data: the pixel-value attribute is SS in implicit VR (dictionary "US or SS") and US as DCMTK wrote it in explicit VR.
        Assert.Equal(expectedSyntax == TransferSyntaxes.ImplicitVRLittleEndian ? -1 : 65535, dataset.GetInt(new DicomTag(0x0028, 0x0106)));
        var frame = DicomPixelData.Create(dataset, file.TransferSyntaxUid).GetFrame(0);
        Assert.Equal(new short[] { 1, 2, 3, 4, 5, -1 }, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, short>(frame.Span).ToArray());
        PydicomReference.AssertSameAsPydicom(file, path);
    }

    [Fact]
    public void File_edited_by_dcmodify_reads_with_the_edits()
    {
        using var temp = new TestFiles.TempDirectory();
        var path = temp.File("ct.dcm");
        File.Copy(TestFiles.Pydicom("CT_small.dcm"), path);

        TestFiles.RunChecked("/usr/bin/dcmodify", "-nb", "-m", "(0010,0010)=Edited^Odd", "-i", "(0008,1115)[0].(0020,000e)=1.2.3.4.5",
            "-i", "(0008,1115)[0].(0008,114a)[1].(0008,1155)=9.8.7", path);

        var dataset = DicomReader.ReadFile(path).Dataset;
        Assert.Equal("Edited^Odd", dataset.GetString(DicomTags.PatientName));
        var series = Assert.Single(dataset.GetSequence(DicomTags.ReferencedSeriesSequence));
        Assert.Equal("1.2.3.4.5", series.GetString(DicomTags.SeriesInstanceUID));
        Assert.Equal("9.8.7", series.GetSequence(DicomTags.ReferencedInstanceSequence)[1].GetString(DicomTags.ReferencedSOPInstanceUID));
        Assert.Equal(128, dataset.GetInt(DicomTags.Rows));
    }

    [Fact]
    public void Rgb_image_converted_by_img2dcm_reads_with_its_pixels()
    {
        using var temp = new TestFiles.TempDirectory();
        const int Width = 5;
        const int Height = 3;
        var bmpPath = temp.File("in.bmp");
        File.WriteAllBytes(bmpPath, Bitmap(Width, Height, (x, y) => ((byte)(200 - x), (byte)(y * 20 + 2), (byte)(x * 10 + 1))));
        var path = temp.File("out.dcm");

        TestFiles.RunChecked("/usr/bin/img2dcm", "-i", "BMP", bmpPath, path);

        var file = DicomReader.ReadFile(path);
        var pixels = DicomPixelData.Create(file.Dataset, file.TransferSyntaxUid);
        Assert.Equal((Height, Width, 3, "RGB"), (pixels.Rows, pixels.Columns, pixels.SamplesPerPixel, pixels.PhotometricInterpretation));
        var frame = pixels.GetFrame(0).Span;
        for (var y = 0; y < Height; y++)
        {
            for (var x = 0; x < Width; x++)
            {
                var at = ((y * Width) + x) * 3;
                Assert.Equal(((byte)(200 - x), (byte)(y * 20 + 2), (byte)(x * 10 + 1)), (frame[at], frame[at + 1], frame[at + 2]));
            }
        }
    }

    /// <summary>A 24-bit bottom-up BMP, rows padded to 4 bytes (odd widths exercise the padding).</summary>
    private static byte[] Bitmap(int width, int height, Func<int, int, (byte R, byte G, byte B)> pixel)
    {
        var stride = ((width * 3) + 3) & ~3;
        var bytes = new byte[54 + (stride * height)];
        bytes[0] = (byte)'B';
        bytes[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(2), bytes.Length);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(18), width);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(22), height);
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(28), 24);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(34), stride * height);
        for (var y = 0; y < height; y++)
        {
            var row = 54 + ((height - 1 - y) * stride);
            for (var x = 0; x < width; x++)
            {
                var (r, g, b) = pixel(x, y);
                bytes[row + (x * 3)] = b;
                bytes[row + (x * 3) + 1] = g;
                bytes[row + (x * 3) + 2] = r;
            }
        }
        return bytes;
    }
}
