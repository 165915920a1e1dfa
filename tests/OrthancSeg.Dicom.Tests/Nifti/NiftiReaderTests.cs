using System.Buffers.Binary;
using OrthancSeg.Dicom.Nifti;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Nifti;

public sealed class NiftiReaderTests : IDisposable
{
    // An oblique RAS affine with non-round spacing and origin, shared by the nibabel-written files.
    private static readonly double[,] NibabelAffine = BuildNibabelAffine();

    private const string NibabelWriter = """
        import sys, json
        import numpy as np, nibabel as nib
        folder, affine = sys.argv[1], np.array(json.loads(sys.argv[2]))
        nx, ny, nz = 13, 7, 5
        i, j, k = np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing='ij')
        image = (((i * 7 + j * 13 + k * 31) % 2000) - 1000).astype(np.int16)
        nib.save(nib.Nifti1Image(image, affine), folder + '/image.nii.gz')
        labels = ((i + j + k) % 5).astype(np.uint16)
        nib.save(nib.Nifti1Image(labels, affine), folder + '/labels-uint16.nii.gz')
        big = labels.copy(); big[3, 2, 1] = 300
        nib.save(nib.Nifti1Image(big, affine), folder + '/labels-300.nii.gz')
        header = nib.Nifti1Header(endianness='>')
        header.set_data_dtype(np.int16)
        swapped = nib.Nifti1Image(image, affine, header)
        nib.save(swapped, folder + '/big-endian.nii')
        qonly = nib.Nifti1Image(image, affine)
        qonly.set_qform(affine, code=1)
        qonly.set_sform(None, code=0)
        nib.save(qonly, folder + '/qform-only.nii')
        """;

    private readonly string _directory = Directory.CreateTempSubdirectory("nifti-reader-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData(VoxelType.UInt8, ".nii.gz")]
    [InlineData(VoxelType.Int16, ".nii.gz")]
    [InlineData(VoxelType.Float32, ".nii.gz")]
    [InlineData(VoxelType.Int16, ".nii")]
    public void Own_files_read_back_to_the_same_grid_and_voxels(VoxelType type, string ending)
    {
        foreach (var geometry in new[] { TestVolumes.Oblique(31, 17, 9), TestVolumes.Sagittal(31, 17, 9), TestVolumes.Oblique(31, 17, 9, leftHanded: true) })
        {
            var volume = TestVolumes.Random(geometry, type, seed: 11);
            var path = Path.Combine(_directory, "volume" + ending);
            NiftiWriter.WriteFile(volume, path, NiftiWriteOptions.Default with { BlockSize = 4096 });

            var image = NiftiReader.ReadFile(path);
            Assert.Equal(NiftiHeader.DataTypeOf(type).DataType, image.DataType);
            Assert.Equal((short)1, image.SformCode);
            Assert.Equal((short)1, image.QformCode);
            Assert.False(image.IsScaled);
            var back = image.ToVolume(type);
            Assert.Equal(volume.Data, back.Data);
            Assert.True(geometry.SameGridAs(back.Geometry, toleranceMm: 1e-4), $"{geometry} read back as {back.Geometry}");
        }
    }

    [Fact]
    public void A_stream_that_cannot_seek_is_read_like_a_file()
    {
        var volume = TestVolumes.CtLike(TestVolumes.Coronal(20, 10, 4), seed: 12);
        using var gz = new MemoryStream();
        NiftiWriter.Write(volume, gz, compress: true);
        var image = NiftiReader.Read(new ForwardOnlyStream(gz.ToArray()));
        Assert.Equal(volume.Data, image.ToVolume().Data);
        Assert.Equal(VoxelType.Int16, image.ToVolume().Type);
    }

    [Fact]
    public void Files_written_by_nibabel_read_with_their_affine_datatype_and_voxels()
    {
        WriteNibabelFiles();
        var expected = ExpectedNibabelImage();

        foreach (var name in new[] { "image.nii.gz", "big-endian.nii", "qform-only.nii" })
        {
            var image = NiftiReader.ReadFile(Path.Combine(_directory, name));
            Assert.Equal(NiftiDataType.Int16, image.DataType);
            Assert.Equal((13, 7, 5), (image.Columns, image.Rows, image.Slices));
            AssertClose(NibabelAffine, image.RasAffine(), 1e-4, name);
            var volume = image.ToVolume(VoxelType.Int16);
            Assert.Equal(expected, volume.AsInt16().ToArray());
        }

        Assert.Equal((short)0, NiftiReader.ReadFile(Path.Combine(_directory, "qform-only.nii")).SformCode);
        // Make sure the byte-swapped case really was byte-swapped on disk.
        Assert.Equal(348, BinaryPrimitives.ReadInt32BigEndian(File.ReadAllBytes(Path.Combine(_directory, "big-endian.nii"))));
    }

    [Fact]
    public void Uint16_labels_convert_to_uint8_only_when_every_value_fits()
    {
        WriteNibabelFiles();
        var labels = NiftiReader.ReadFile(Path.Combine(_directory, "labels-uint16.nii.gz"));
        Assert.Equal(NiftiDataType.UInt16, labels.DataType);
        var bytes = labels.ToVolume(VoxelType.UInt8).AsUInt8().ToArray();
        Assert.Equal(ExpectedNibabelLabels(), bytes);
        Assert.Equal(VoxelType.Int16, labels.ToVolume().Type);

        var tooBig = NiftiReader.ReadFile(Path.Combine(_directory, "labels-300.nii.gz"));
        var error = Assert.Throws<DicomException>(() => tooBig.ToVolume(VoxelType.UInt8));
        Assert.Contains("(3, 2, 1) holds 300", error.Message, StringComparison.Ordinal);
        Assert.Equal(300, tooBig.ToVolume(VoxelType.Int16).AsInt16()[(((1 * 7) + 2) * 13) + 3]);
    }

    [Fact]
    public void Scaled_voxels_are_converted_with_slope_and_intercept()
    {
        var volume = Volume.Allocate(TestVolumes.Axial(4, 3, 2), VoxelType.Int16);
        var voxels = volume.AsInt16();
        for (var i = 0; i < voxels.Length; i++)
        {
            voxels[i] = (short)(i - 10);
        }
        var bytes = Plain(volume);
        BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(112), 0.5f);
        BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(116), -3f);

        var image = NiftiReader.Read(new MemoryStream(bytes));
        Assert.True(image.IsScaled);
        var floats = image.ToVolume().AsFloat32().ToArray();
        Assert.Equal(Enumerable.Range(0, 24).Select(i => ((i - 10) * 0.5f) - 3f), floats);
        Assert.Throws<DicomException>(() => image.ToVolume(VoxelType.Int16));
    }

    [Fact]
    public void Float_voxels_with_fractions_are_refused_as_labels()
    {
        var volume = Volume.Allocate(TestVolumes.Axial(2, 2, 1), VoxelType.Float32);
        volume.AsFloat32()[3] = 1.5f;
        var image = NiftiReader.Read(new MemoryStream(Plain(volume)));
        var error = Assert.Throws<DicomException>(() => image.ToVolume(VoxelType.UInt8));
        Assert.Contains("(1, 1, 0) holds 1.5", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_gzip_is_refused()
    {
        var gz = Gzipped(TestVolumes.CtLike(TestVolumes.Axial(64, 64, 8), seed: 13));
        var error = Assert.Throws<DicomException>(() => NiftiReader.Read(new MemoryStream(gz[..(gz.Length / 2)])));
        Assert.Contains("runcated", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Gzip_without_its_trailer_is_refused()
    {
        var gz = Gzipped(TestVolumes.CtLike(TestVolumes.Axial(64, 64, 8), seed: 14));
        Assert.Throws<DicomException>(() => NiftiReader.Read(new MemoryStream(gz[..^8])));
    }

    [Fact]
    public void Gzip_with_a_corrupted_byte_is_refused()
    {
        var gz = Gzipped(TestVolumes.Random(TestVolumes.Axial(64, 64, 8), VoxelType.Int16, seed: 15));
        gz[gz.Length / 2] ^= 0x55;
        Assert.Throws<DicomException>(() => NiftiReader.Read(new MemoryStream(gz)));
    }

    [Fact]
    public void Wrong_sizeof_hdr_is_refused()
    {
        var bytes = Plain(TestVolumes.CtLike(TestVolumes.Axial(8, 8, 2), seed: 16));
        BinaryPrimitives.WriteInt32LittleEndian(bytes, 349);
        var error = Assert.Throws<DicomException>(() => NiftiReader.Read(new MemoryStream(bytes)));
        Assert.Contains("sizeof_hdr is 349", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dimensions_larger_than_the_data_are_refused()
    {
        var bytes = Plain(TestVolumes.CtLike(TestVolumes.Axial(8, 8, 2), seed: 17));
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(46), 3); // dim[3]: 2 slices → 3
        var error = Assert.Throws<DicomException>(() => NiftiReader.Read(new MemoryStream(bytes)));
        Assert.Contains("needs 384 bytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dimensions_smaller_than_the_data_are_refused()
    {
        var path = Path.Combine(_directory, "short.nii.gz");
        var bytes = Plain(TestVolumes.CtLike(TestVolumes.Axial(8, 8, 2), seed: 18));
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(46), 1); // dim[3]: 2 slices → 1
        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<DicomException>(() => NiftiReader.ReadFile(path));
        Assert.Contains("more than the 128 bytes", error.Message, StringComparison.Ordinal);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Other_malformed_headers_are_refused_with_the_reason()
    {
        var good = Plain(TestVolumes.CtLike(TestVolumes.Axial(8, 8, 2), seed: 19));
        AssertRefused(good[..200], "the header needs 348 bytes, the file has 200");
        AssertRefused(Patched(good, b => "ni1\0"u8.CopyTo(b.AsSpan(344))), ".hdr/.img pair");
        AssertRefused(Patched(good, b => BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(70), 128)), "datatype code 128");
        AssertRefused(Patched(good, b => BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(72), 8)), "bitpix is 8");
        AssertRefused(Patched(good, b => BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(42), 0)), "dim[1] is 0");
        AssertRefused(Patched(good, b =>
        {
            BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(40), 4);
            BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(48), 2);
        }), "only a single 3-D volume");
        AssertRefused(Patched(good, b =>
        {
            BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(252), 0);
            BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(254), 0);
        }), "no orientation");
        AssertRefused(Patched(good, b => BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(108), 100)), "vox_offset is 100");
        AssertRefused([], "the file has 0");
    }

    private static void AssertRefused(byte[] bytes, string reason)
    {
        var error = Assert.Throws<DicomException>(() => NiftiReader.Read(new MemoryStream(bytes)));
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }

    private static byte[] Patched(byte[] bytes, Action<byte[]> patch)
    {
        var copy = (byte[])bytes.Clone();
        patch(copy);
        return copy;
    }

    private static byte[] Plain(Volume volume)
    {
        using var output = new MemoryStream();
        NiftiWriter.Write(volume, output, compress: false);
        return output.ToArray();
    }

    private static byte[] Gzipped(Volume volume)
    {
        using var output = new MemoryStream();
        NiftiWriter.Write(volume, output, compress: true, NiftiWriteOptions.Default with { BlockSize = 4096 });
        return output.ToArray();
    }

    private void WriteNibabelFiles()
    {
        var rows = Enumerable.Range(0, 4).Select(r => Enumerable.Range(0, 4).Select(c => NibabelAffine[r, c]).ToArray()).ToArray();
        ExternalTool.RunPython(NibabelWriter, _directory, System.Text.Json.JsonSerializer.Serialize(rows));
    }

    private static short[] ExpectedNibabelImage()
    {
        var voxels = new short[13 * 7 * 5];
        for (var k = 0; k < 5; k++)
        {
            for (var j = 0; j < 7; j++)
            {
                for (var i = 0; i < 13; i++)
                {
                    voxels[(((k * 7) + j) * 13) + i] = (short)((((i * 7) + (j * 13) + (k * 31)) % 2000) - 1000);
                }
            }
        }
        return voxels;
    }

    private static byte[] ExpectedNibabelLabels()
    {
        var voxels = new byte[13 * 7 * 5];
        for (var k = 0; k < 5; k++)
        {
            for (var j = 0; j < 7; j++)
            {
                for (var i = 0; i < 13; i++)
                {
                    voxels[(((k * 7) + j) * 13) + i] = (byte)((i + j + k) % 5);
                }
            }
        }
        return voxels;
    }

    private static double[,] BuildNibabelAffine()
    {
        var g = TestVolumes.Oblique(13, 7, 5);
        return g.RasAffine();
    }

    private static void AssertClose(double[,] expected, double[,] actual, double tolerance, string what)
    {
        for (var r = 0; r < 4; r++)
        {
            for (var c = 0; c < 4; c++)
            {
                Assert.True(Math.Abs(expected[r, c] - actual[r, c]) <= tolerance, $"{what}: affine[{r},{c}] expected {expected[r, c]}, got {actual[r, c]}");
            }
        }
    }

    /// <summary>Like an HTTP body: reads forward in small pieces, cannot seek or tell its length.</summary>
    private sealed class ForwardOnlyStream(byte[] data) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = Math.Min(Math.Min(count, 1000), data.Length - _position);
            data.AsSpan(_position, n).CopyTo(buffer.AsSpan(offset));
            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
