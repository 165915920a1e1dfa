using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using OrthancSeg.Dicom.Nifti;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Nifti;

public sealed class NiftiWriterTests : IDisposable
{
    private const string NibabelReport = """
        import sys, json, hashlib, gzip
        import numpy as np, nibabel as nib
        out = []
        for p in sys.argv[1:]:
            img = nib.load(p)
            # The header as stored: nibabel resets scl_slope/scl_inter to NaN on the image it loads.
            with (gzip.open if p.endswith('.gz') else open)(p, 'rb') as f:
                h = nib.Nifti1Header.from_fileobj(f)
            arr = np.asanyarray(img.dataobj)
            out.append(dict(
                shape=list(arr.shape), dtype=str(arr.dtype),
                sha256=hashlib.sha256(arr.tobytes(order='F')).hexdigest(),
                affine=img.affine.tolist(), sform=h.get_sform().tolist(), qform=h.get_qform().tolist(),
                qform_code=int(h['qform_code']), sform_code=int(h['sform_code']),
                sizeof_hdr=int(h['sizeof_hdr']), vox_offset=float(h['vox_offset']),
                magic=h['magic'].item().decode('latin1'), descrip=h['descrip'].item().decode('latin1'),
                pixdim=[float(x) for x in h['pixdim']], xyzt_units=int(h['xyzt_units']),
                scl_slope=float(h['scl_slope']), scl_inter=float(h['scl_inter']),
                datatype=int(h['datatype']), bitpix=int(h['bitpix']), dim=[int(x) for x in h['dim']]))
        print(json.dumps(out))
        """;

    private const string GzipReport = """
        import sys, json, gzip, zlib
        gz = open(sys.argv[1], 'rb').read()
        raw = open(sys.argv[2], 'rb').read()
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        via_zlib = member.decompress(gz) + member.flush()
        # One deflate stream that ends (BFINAL) exactly before the 8-byte trailer: one member, pigz-style.
        deflate = zlib.decompressobj(-zlib.MAX_WBITS)
        via_raw = deflate.decompress(gz[10:-8]) + deflate.flush()
        print(json.dumps(dict(
            gzip=gzip.decompress(gz) == raw,
            zlib=via_zlib == raw and member.eof and member.unused_data == b'',
            raw_deflate=via_raw == raw and deflate.eof and deflate.unused_data == b'')))
        """;

    private readonly string _directory = Directory.CreateTempSubdirectory("nifti-writer-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    public static TheoryData<string> Orientations => ["axial", "coronal", "sagittal", "oblique", "oblique-left-handed", "axial-left-handed"];

    private static VolumeGeometry GeometryFor(string orientation, int columns, int rows, int slices) => orientation switch
    {
        "axial" => TestVolumes.Axial(columns, rows, slices),
        "coronal" => TestVolumes.Coronal(columns, rows, slices),
        "sagittal" => TestVolumes.Sagittal(columns, rows, slices),
        "oblique" => TestVolumes.Oblique(columns, rows, slices),
        "oblique-left-handed" => TestVolumes.Oblique(columns, rows, slices, leftHanded: true),
        "axial-left-handed" => TestVolumes.AxialLeftHanded(columns, rows, slices),
        _ => throw new ArgumentOutOfRangeException(nameof(orientation)),
    };

    [Theory]
    [MemberData(nameof(Orientations))]
    public void Nibabel_reads_the_written_grid_voxels_and_matching_qform_and_sform(string orientation)
    {
        var geometry = GeometryFor(orientation, 37, 29, 11);
        Volume[] volumes =
        [
            TestVolumes.CtLike(geometry, seed: 1),
            TestVolumes.Random(geometry, VoxelType.UInt8, seed: 2),
            TestVolumes.Random(geometry, VoxelType.Float32, seed: 3),
        ];
        var paths = new List<string>();
        foreach (var volume in volumes)
        {
            var path = Path.Combine(_directory, $"{orientation}-{volume.Type}.nii.gz");
            NiftiWriter.WriteFile(volume, path, NiftiWriteOptions.Default with { BlockSize = 4096 });
            paths.Add(path);
        }
        var plainPath = Path.Combine(_directory, $"{orientation}-plain.nii");
        NiftiWriter.WriteFile(volumes[0], plainPath);
        paths.Add(plainPath);

        using var report = JsonDocument.Parse(ExternalTool.RunPython(NibabelReport, [.. paths]));
        var files = report.RootElement.EnumerateArray().ToArray();
        var expectedAffine = geometry.RasAffine();
        var leftHanded = orientation.EndsWith("left-handed", StringComparison.Ordinal);
        for (var f = 0; f < files.Length; f++)
        {
            var file = files[f];
            var volume = f < volumes.Length ? volumes[f] : volumes[0];
            Assert.Equal([37, 29, 11], file.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
            Assert.Equal(volume.Type switch { VoxelType.UInt8 => "uint8", VoxelType.Int16 => "int16", _ => "float32" }, file.GetProperty("dtype").GetString());
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(volume.Data)), file.GetProperty("sha256").GetString());
            AssertMatrix(expectedAffine, file.GetProperty("affine"), 1e-4);
            AssertMatrix(expectedAffine, file.GetProperty("sform"), 1e-4);
            AssertMatrix(expectedAffine, file.GetProperty("qform"), 1e-4);
            Assert.Equal(1, file.GetProperty("qform_code").GetInt32());
            Assert.Equal(1, file.GetProperty("sform_code").GetInt32());
            Assert.Equal(348, file.GetProperty("sizeof_hdr").GetInt32());
            Assert.Equal(352.0, file.GetProperty("vox_offset").GetDouble());
            Assert.Equal("n+1", file.GetProperty("magic").GetString());
            Assert.Equal("OrthancSeg", file.GetProperty("descrip").GetString());
            Assert.Equal(2, file.GetProperty("xyzt_units").GetInt32());
            Assert.Equal(1.0, file.GetProperty("scl_slope").GetDouble());
            Assert.Equal(0.0, file.GetProperty("scl_inter").GetDouble());
            var pixdim = file.GetProperty("pixdim").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            Assert.Equal(leftHanded ? -1.0 : 1.0, pixdim[0]);
            Assert.Equal(TestVolumes.Spacing.X, pixdim[1], 1e-6);
            Assert.Equal(TestVolumes.Spacing.Y, pixdim[2], 1e-6);
            Assert.Equal(TestVolumes.Spacing.Z, pixdim[3], 1e-6);
            Assert.Equal([3, 37, 29, 11, 1, 1, 1, 1], file.GetProperty("dim").EnumerateArray().Select(e => e.GetInt32()));
        }
    }

    [Fact]
    public void Header_datatype_and_bitpix_follow_the_voxel_type()
    {
        var geometry = TestVolumes.Axial(3, 2, 1);
        foreach (var (type, code, bits) in new[] { (VoxelType.UInt8, 2, 8), (VoxelType.Int16, 4, 16), (VoxelType.Float32, 16, 32) })
        {
            using var output = new MemoryStream();
            NiftiWriter.Write(Volume.Allocate(geometry, type), output, compress: false);
            var bytes = output.ToArray();
            Assert.Equal(352 + (6 * Volume.BytesPerVoxel(type)), bytes.Length);
            Assert.Equal(code, BinaryPrimitives.ReadInt16LittleEndian(bytes.AsSpan(70)));
            Assert.Equal(bits, BinaryPrimitives.ReadInt16LittleEndian(bytes.AsSpan(72)));
            Assert.Equal([0, 0, 0, 0], bytes[348..352]);
        }
    }

    [Fact]
    public void Image_and_label_on_one_grid_get_headers_that_differ_only_in_datatype_and_bitpix()
    {
        // nnU-Net errors on shape or spacing mismatches between image and label and warns on affine ones.
        var geometry = TestVolumes.Oblique(40, 30, 7);
        var image = Header(TestVolumes.CtLike(geometry, seed: 8));
        var label = Header(Volume.Allocate(geometry, VoxelType.UInt8));
        for (var offset = 0; offset < 352; offset++)
        {
            if (offset is < 70 or >= 74)
            {
                Assert.True(image[offset] == label[offset], $"header byte {offset} differs");
            }
        }
        Assert.NotEqual(image[70..74], label[70..74]);
    }

    private static byte[] Header(Volume volume)
    {
        using var output = new MemoryStream();
        NiftiWriter.Write(volume, output, compress: false);
        return output.ToArray()[..352];
    }

    [Fact]
    public void Compressed_file_passes_gzip_test_and_python_gzip_and_zlib_read_one_member()
    {
        var volume = TestVolumes.CtLike(TestVolumes.Oblique(300, 200, 13), seed: 4);
        var gz = Path.Combine(_directory, "ct.nii.gz");
        var raw = Path.Combine(_directory, "ct.nii");
        NiftiWriter.WriteFile(volume, gz);
        NiftiWriter.WriteFile(volume, raw);
        Assert.True(new FileInfo(gz).Length < new FileInfo(raw).Length / 2, "CT-like data should at least halve");

        ExternalTool.Run("gzip", "-t", gz);
        using var report = JsonDocument.Parse(ExternalTool.RunPython(GzipReport, gz, raw));
        Assert.True(report.RootElement.GetProperty("gzip").GetBoolean(), "python gzip");
        Assert.True(report.RootElement.GetProperty("zlib").GetBoolean(), "zlib gzip wrapper");
        Assert.True(report.RootElement.GetProperty("raw_deflate").GetBoolean(), "one raw deflate stream");
    }

    [Theory]
    [InlineData(VoxelType.UInt8, 1, 1, 1)] // 353 bytes: one block shorter than the block size
    [InlineData(VoxelType.Float32, 1, 1, 1)]
    [InlineData(VoxelType.UInt8, 24, 28, 1)] // 352 + 672 = exactly one 1 KiB block
    [InlineData(VoxelType.UInt8, 11, 61, 1)] // one byte short of a block
    [InlineData(VoxelType.UInt8, 673, 1, 1)] // one byte over: a final block of 1 byte
    [InlineData(VoxelType.Int16, 16, 53, 1)] // exactly two blocks
    [InlineData(VoxelType.Int16, 7, 11, 13)] // divisible by nothing in particular
    [InlineData(VoxelType.Float32, 37, 41, 23)] // 137 blocks
    public void Single_threaded_and_parallel_output_are_identical_and_decompress_to_the_plain_file(VoxelType type, int columns, int rows, int slices)
    {
        var volume = TestVolumes.Random(TestVolumes.Axial(columns, rows, slices), type, seed: columns * rows * slices);
        // Half the voxels zero: blocks mix stored (incompressible) and compressed deflate blocks.
        volume.Data.AsSpan(0, volume.Data.Length / 2).Clear();
        using var plain = new MemoryStream();
        NiftiWriter.Write(volume, plain, compress: false);

        var options = NiftiWriteOptions.Default with { BlockSize = 1024 };
        using var sequential = new MemoryStream();
        NiftiWriter.Write(volume, sequential, compress: true, options with { MaxDegreeOfParallelism = 1 });
        using var parallel = new MemoryStream();
        NiftiWriter.Write(volume, parallel, compress: true, options with { MaxDegreeOfParallelism = 4 });

        Assert.Equal(sequential.ToArray(), parallel.ToArray());
        Assert.Equal(plain.ToArray(), Gunzip(parallel.ToArray()));

        var gz = Path.Combine(_directory, "blocks.nii.gz");
        var raw = Path.Combine(_directory, "blocks.nii");
        File.WriteAllBytes(gz, parallel.ToArray());
        File.WriteAllBytes(raw, plain.ToArray());
        ExternalTool.Run("gzip", "-t", gz);
        using var report = JsonDocument.Parse(ExternalTool.RunPython(GzipReport, gz, raw));
        Assert.True(report.RootElement.GetProperty("zlib").GetBoolean(), "zlib gzip wrapper");
        Assert.True(report.RootElement.GetProperty("raw_deflate").GetBoolean(), "one raw deflate stream");
    }

    [Fact]
    public void Gzip_trailer_holds_crc32_and_length_of_the_plain_file()
    {
        var volume = TestVolumes.CtLike(TestVolumes.Axial(64, 48, 5), seed: 5);
        using var plain = new MemoryStream();
        NiftiWriter.Write(volume, plain, compress: false);
        using var gz = new MemoryStream();
        NiftiWriter.Write(volume, gz, compress: true, NiftiWriteOptions.Default with { BlockSize = 2048 });
        var bytes = gz.ToArray();
        Assert.Equal(System.IO.Hashing.Crc32.HashToUInt32(plain.ToArray()), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(bytes.Length - 8)));
        Assert.Equal((uint)plain.Length, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(bytes.Length - 4)));
    }

    [Fact]
    public void WriteFile_replaces_an_existing_file_and_leaves_no_temporary_behind()
    {
        var path = Path.Combine(_directory, "case_0000.nii.gz");
        File.WriteAllText(path, "stale");
        var volume = TestVolumes.CtLike(TestVolumes.Axial(16, 16, 2), seed: 6);
        NiftiWriter.WriteFile(volume, path);
        Assert.Equal([0x1F, 0x8B], File.ReadAllBytes(path)[..2]);
        Assert.Equal(["case_0000.nii.gz"], Directory.GetFiles(_directory).Select(Path.GetFileName));
    }

    [Fact]
    public void Invalid_options_are_refused_before_anything_is_written()
    {
        var volume = Volume.Allocate(TestVolumes.Axial(2, 2, 2), VoxelType.UInt8);
        using var output = new MemoryStream();
        Assert.Throws<ArgumentOutOfRangeException>(() => NiftiWriter.Write(volume, output, true, NiftiWriteOptions.Default with { CompressionLevel = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => NiftiWriter.Write(volume, output, true, NiftiWriteOptions.Default with { CompressionLevel = 10 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => NiftiWriter.Write(volume, output, true, NiftiWriteOptions.Default with { MaxDegreeOfParallelism = 0 }));
        Assert.Equal(0, output.Length);
    }

    [Fact]
    public void A_failing_output_stream_surfaces_its_error_and_stops_the_workers()
    {
        var volume = TestVolumes.Random(TestVolumes.Axial(64, 64, 16), VoxelType.Int16, seed: 7);
        using var output = new FailingStream(failAfterBytes: 10_000);
        var error = Assert.Throws<IOException>(() => NiftiWriter.Write(volume, output, true, NiftiWriteOptions.Default with { BlockSize = 4096, MaxDegreeOfParallelism = 3 }));
        Assert.Equal("disk full", error.Message);
    }

    internal static byte[] Gunzip(byte[] gz)
    {
        using var gzip = new GZipStream(new MemoryStream(gz), CompressionMode.Decompress);
        using var result = new MemoryStream();
        gzip.CopyTo(result);
        return result.ToArray();
    }

    private static void AssertMatrix(double[,] expected, JsonElement actual, double tolerance)
    {
        var rows = actual.EnumerateArray().Select(r => r.EnumerateArray().Select(e => e.GetDouble()).ToArray()).ToArray();
        for (var r = 0; r < 4; r++)
        {
            for (var c = 0; c < 4; c++)
            {
                Assert.True(Math.Abs(expected[r, c] - rows[r][c]) <= tolerance, $"affine[{r},{c}]: expected {expected[r, c]}, got {rows[r][c]}");
            }
        }
    }

    private sealed class FailingStream(long failAfterBytes) : MemoryStream
    {
        public override void Write(ReadOnlySpan<byte> buffer) => Write(buffer.ToArray(), 0, buffer.Length);

        public override void Write(byte[] buffer, int offset, int count)
        {
            if (Length + count > failAfterBytes)
            {
                throw new IOException("disk full");
            }
            base.Write(buffer, offset, count);
        }
    }
}
