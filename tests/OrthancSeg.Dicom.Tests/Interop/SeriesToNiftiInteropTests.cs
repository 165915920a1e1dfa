using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using OrthancSeg.Dicom.Nifti;
using OrthancSeg.Dicom.Tests.Tools;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Interop;

/// <summary>
/// End to end: a series written by pydicom (or DCMTK) becomes our NIfTI, and other tools read it with every voxel where
/// the DICOM put it. nibabel checks the affine against one derived from the DICOM alone and finds every DICOM pixel at
/// the voxel our affine places at that pixel's world position; dcm2niix's own conversion of the same files, rows
/// flipped as it does by default, holds the same value at every world position as ours.
/// </summary>
/// <remarks>
/// The grids are deliberately awkward: 40 columns × 30 rows, PixelSpacing 0.7 (rows) × 0.9 (columns), slices 2.5 mm
/// apart but 3 mm thick, and RescaleIntercept −1024. Each stored value is unique to its instance, row and column,
/// so a transposed, flipped or misordered voxel cannot go unnoticed. Files are named in neither instance nor position
/// order.
/// </remarks>
public sealed class SeriesToNiftiInteropTests : IDisposable
{
    private const int Columns = 40;
    private const int Rows = 30;
    private const int Slices = 7;
    private const double SliceSpacing = 2.5;
    private const string Intercept = "-1024";
    private static readonly Vector3D Origin = new(-20.5, 30.25, -40);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Writes one CT instance per spec entry with pydicom (Explicit VR Little Endian), pixels from the raw file.</summary>
    private const string PydicomWriter = """
        import sys, os, json
        import pydicom
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian
        spec, out = json.load(open(sys.argv[1])), sys.argv[2]
        ct = '1.2.840.10008.5.1.4.1.1.2'
        for inst in spec['instances']:
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID = ct, inst['uid'], ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.is_little_endian, ds.is_implicit_VR = True, False
            ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = ct, inst['uid'], 'CT'
            ds.ImageType = ['ORIGINAL', 'PRIMARY', 'AXIAL']
            ds.PatientName, ds.PatientID = 'Interop^Series', 'INTEROP'
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = spec['study'], spec['series'], spec['frame']
            ds.StudyDate, ds.StudyTime, ds.SeriesNumber, ds.InstanceNumber = '20260101', '120000', 1, inst['number']
            ds.ImagePositionPatient = inst['position']
            ds.ImageOrientationPatient = spec['orientation']
            ds.PixelSpacing, ds.SliceThickness = spec['pixelSpacing'], spec['sliceThickness']
            ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = spec['rows'], spec['columns'], 1, 'MONOCHROME2'
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = spec['intercept'], '1', 'HU'
            with open(inst['raw'], 'rb') as raw:
                ds.PixelData = raw.read()
            ds.save_as(os.path.join(out, inst['file']), write_like_original=False)
        """;

    /// <summary>
    /// Reads our NIfTI with nibabel and the DICOM with pydicom, never with our code, and exits non-zero naming the first
    /// disagreement. Prints what it checked as JSON so the test can tell a full check from an empty one.
    /// </summary>
    private const string NibabelChecker = """
        import sys, os, json
        import numpy as np, nibabel as nib, pydicom
        dicom_dir, ours_path, theirs_path = sys.argv[1], sys.argv[2], sys.argv[3]

        def fail(message):
            sys.exit('FAIL: ' + message)

        # The expected affine from the DICOM alone (nibabel's dicom_orientation formula): slices sorted along the normal
        # of ImageOrientationPatient, the slice step from the first and last positions, then LPS -> RAS.
        files = [pydicom.dcmread(os.path.join(dicom_dir, name)) for name in sorted(os.listdir(dicom_dir))]
        iop = np.array(files[0].ImageOrientationPatient, dtype=float)
        row_cos, col_cos = iop[:3], iop[3:]
        normal = np.cross(row_cos, col_cos)
        row_spacing, col_spacing = (float(v) for v in files[0].PixelSpacing)
        files.sort(key=lambda ds: float(np.dot(np.array(ds.ImagePositionPatient, dtype=float), normal)))
        first = np.array(files[0].ImagePositionPatient, dtype=float)
        last = np.array(files[-1].ImagePositionPatient, dtype=float)
        lps = np.eye(4)
        lps[:3, 0] = row_cos * col_spacing
        lps[:3, 1] = col_cos * row_spacing
        lps[:3, 2] = (last - first) / (len(files) - 1)
        lps[:3, 3] = first
        expected = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps

        ours = nib.load(ours_path)
        affine = ours.affine
        if not np.allclose(affine, expected, atol=1e-4):
            fail(f'affine\n{affine}\nis not the one derived from the DICOM\n{expected}')
        qform, qcode = ours.get_qform(coded=True)
        sform, scode = ours.get_sform(coded=True)
        if (int(qcode), int(scode)) != (1, 1):
            fail(f'qform_code {qcode}, sform_code {scode}; expected 1 and 1')
        if not np.allclose(qform, sform, atol=1e-4):
            fail(f'qform\n{qform}\ndiffers from sform\n{sform}')
        zooms = ours.header.get_zooms()
        if not np.allclose(zooms, [col_spacing, row_spacing, np.linalg.norm(lps[:3, 2])], atol=1e-4):
            fail(f'pixdim {zooms} is not the column, row and slice spacing')
        if ours.header.get_xyzt_units()[0] != 'mm':
            fail(f'spatial unit {ours.header.get_xyzt_units()[0]}, expected mm')
        rows, cols = int(files[0].Rows), int(files[0].Columns)
        if ours.shape != (cols, rows, len(files)):
            fail(f'shape {ours.shape}, expected {(cols, rows, len(files))}')
        data = ours.get_fdata()

        # Every DICOM pixel, put in the world by its own file's IPP, IOP and PixelSpacing, must be at the voxel our
        # affine places there, with its rescaled value; together the pixels must cover every voxel exactly once.
        to_voxel = np.linalg.inv(affine)
        r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing='ij')
        hits = np.zeros(data.shape, dtype=int)
        for ds in files:
            ipp = np.array(ds.ImagePositionPatient, dtype=float)
            o = np.array(ds.ImageOrientationPatient, dtype=float)
            dr, dc = (float(v) for v in ds.PixelSpacing)
            world_ras = (ipp + c[..., None] * dc * o[:3] + r[..., None] * dr * o[3:]) * np.array([-1.0, -1.0, 1.0])
            ijk = world_ras @ to_voxel[:3, :3].T + to_voxel[:3, 3]
            index = np.rint(ijk).astype(int)
            if np.abs(ijk - index).max() > 1e-3:
                fail(f'pixels of instance {ds.InstanceNumber} fall between voxels (off by {np.abs(ijk - index).max():.4f})')
            if (index < 0).any() or (index >= np.array(data.shape)).any():
                fail(f'pixels of instance {ds.InstanceNumber} fall outside the volume')
            values = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            found = data[index[..., 0], index[..., 1], index[..., 2]]
            wrong = np.argwhere(found != values)
            if len(wrong):
                wr, wc = wrong[0]
                fail(f'instance {ds.InstanceNumber} pixel (row {wr}, column {wc}) is {values[wr, wc]} but voxel {tuple(index[wr, wc])} holds {found[wr, wc]}; {len(wrong)} pixels wrong')
            np.add.at(hits, (index[..., 0], index[..., 1], index[..., 2]), 1)
        if (hits != 1).any():
            fail(f'{int((hits == 0).sum())} voxels received no pixel and {int((hits > 1).sum())} more than one')
        report = {'voxels': int(data.size), 'dtype': str(ours.get_data_dtype())}

        # dcm2niix flips rows (and may reorient); its own affine says where each of its voxels is. At the world point
        # of each of our voxels, dcm2niix's image must hold the same value.
        theirs = nib.load(theirs_path)
        their_data = theirs.get_fdata()
        if sorted(theirs.shape) != sorted(data.shape):
            fail(f'dcm2niix made shape {theirs.shape}, ours is {data.shape}')
        i, j, k = (a.ravel() for a in np.indices(data.shape))
        world = affine @ np.vstack([i, j, k, np.ones_like(i)])
        their_ijk = (np.linalg.inv(theirs.affine) @ world)[:3].T
        their_index = np.rint(their_ijk).astype(int)
        if np.abs(their_ijk - their_index).max() > 1e-2:
            fail(f'our voxel centres fall between dcm2niix voxels (off by {np.abs(their_ijk - their_index).max():.4f})')
        if (their_index < 0).any() or (their_index >= np.array(theirs.shape)).any():
            fail('our voxels fall outside the dcm2niix volume')
        their_values = their_data[their_index[:, 0], their_index[:, 1], their_index[:, 2]]
        wrong = np.flatnonzero(their_values != data[i, j, k])
        if len(wrong):
            w = wrong[0]
            fail(f'our voxel {(i[w], j[w], k[w])} is {data[i[w], j[w], k[w]]} but dcm2niix has {their_values[w]} there; {len(wrong)} voxels differ')
        report['dcm2niixVoxels'] = int(len(i))
        # Whether dcm2niix's row axis runs against ours: only then is agreement more than identical voxel order.
        report['dcm2niixRowsFlipped'] = bool(np.dot(theirs.affine[:3, 1], affine[:3, 1]) < 0)
        print(json.dumps(report))
        """;

    private readonly TempDirectory _work = new();

    public void Dispose() => _work.Dispose();

    [Theory]
    [InlineData("axial", false)]
    [InlineData("axial-descending", true)]
    [InlineData("coronal", false)]
    [InlineData("sagittal", true)]
    [InlineData("oblique", true)]
    [InlineData("oblique-descending", false)]
    public void Nibabel_and_dcm2niix_find_every_voxel_of_our_nifti_where_the_dicom_series_put_it(string orientation, bool throughCli)
    {
        var series = WriteSpec(orientation, "series");
        var dicom = Directory.CreateDirectory(_work.File("dicom")).FullName;
        ExternalTool.RunPython(PydicomWriter, series.SpecPath, dicom);
        Assert.Equal(Slices, Directory.GetFiles(dicom).Length);

        var ours = _work.File("ours.nii.gz");
        if (throughCli)
        {
            var result = CliProcess.Run("convert", "series", dicom, ours);
            Assert.True(result.ExitCode == 0, $"orthancseg convert series exited with {result.ExitCode}: {result.Error}");
            Assert.Equal($"40×30×7 voxels, spacing 0.9×0.7×2.5 mm, {orientation.Split('-')[0]}, int16", result.Output.Trim());
        }
        else
        {
            var volume = SeriesVolumeBuilder.Build(Directory.GetFiles(dicom).Select(DicomReader.ReadFile));
            NiftiWriter.WriteFile(volume.Volume, ours);
        }

        AssertOthersReadItAsTheDicom(dicom, ours);
    }

    [Fact]
    public void Series_written_by_dcmtk_converts_to_the_same_voxels_as_the_same_series_written_by_pydicom()
    {
        // Oblique with descending instance numbers, so the slice sort and the tilted grid are both exercised; DCMTK
        // writes Implicit VR Little Endian (pydicom Explicit), so the two series share values but not encoding.
        var series = WriteSpec("oblique-descending", "series");
        var fromPydicom = Directory.CreateDirectory(_work.File("pydicom")).FullName;
        ExternalTool.RunPython(PydicomWriter, series.SpecPath, fromPydicom);
        var fromDcmtk = Directory.CreateDirectory(_work.File("dcmtk")).FullName;
        foreach (var instance in series.Instances)
        {
            var dump = _work.File($"{instance.Number}.dump");
            File.WriteAllText(dump, Dump(series, instance));
            var result = ExternalTool.Run("/usr/bin/dump2dcm", ["+ti", dump, Path.Combine(fromDcmtk, instance.File)]);
            Assert.True(result.ExitCode == 0, $"dump2dcm exited with {result.ExitCode}: {result.Error}");
        }

        var dcmtkFiles = Directory.GetFiles(fromDcmtk).Select(DicomReader.ReadFile).ToList();
        Assert.All(dcmtkFiles, f => Assert.Equal(TransferSyntaxes.ImplicitVRLittleEndian, f.TransferSyntaxUid));
        var dcmtk = SeriesVolumeBuilder.Build(dcmtkFiles);
        var pydicom = SeriesVolumeBuilder.Build(Directory.GetFiles(fromPydicom).Select(DicomReader.ReadFile));

        Assert.Equal(pydicom.Volume.Type, dcmtk.Volume.Type);
        Assert.True(dcmtk.Volume.Geometry.SameGridAs(pydicom.Volume.Geometry, toleranceMm: 1e-6),
            $"DCMTK series grid {dcmtk.Summary} differs from the pydicom one {pydicom.Summary}");
        Assert.Equal(pydicom.SopInstanceUids, dcmtk.SopInstanceUids);
        Assert.Equal(pydicom.Volume.Data, dcmtk.Volume.Data);
        // Equal to each other is not enough: the DCMTK series must also be right.
        var ours = _work.File("dcmtk.nii.gz");
        NiftiWriter.WriteFile(dcmtk.Volume, ours);
        AssertOthersReadItAsTheDicom(fromDcmtk, ours);
    }

    private void AssertOthersReadItAsTheDicom(string dicom, string ours)
    {
        var converted = Directory.CreateDirectory(_work.File("dcm2niix")).FullName;
        var dcm2niix = ExternalTool.Run("/usr/bin/dcm2niix", ["-z", "y", "-f", "converted", "-o", converted, dicom]);
        Assert.True(dcm2niix.ExitCode == 0, $"dcm2niix exited with {dcm2niix.ExitCode}: {dcm2niix.Error}{dcm2niix.Output}");
        // dcm2niix converts every one of these series, oblique included, as one volume: no split, no _Tilt or _Eq copy.
        var theirs = Assert.Single(Directory.GetFiles(converted, "*.nii.gz"));

        using var report = JsonDocument.Parse(ExternalTool.RunPython(NibabelChecker, dicom, ours, theirs));
        var checkedVoxels = report.RootElement;
        Assert.Equal(Columns * Rows * Slices, checkedVoxels.GetProperty("voxels").GetInt32());
        Assert.Equal("int16", checkedVoxels.GetProperty("dtype").GetString());
        Assert.Equal(Columns * Rows * Slices, checkedVoxels.GetProperty("dcm2niixVoxels").GetInt32());
        // dcm2niix's default row flip: its voxel order differs from ours, so agreeing on values per world point
        // proves the mappings agree rather than that both files are stored alike.
        Assert.True(checkedVoxels.GetProperty("dcm2niixRowsFlipped").GetBoolean(), "dcm2niix kept DICOM row order; the comparison is weaker than intended");
    }

    private sealed record Instance(int Number, string Uid, string[] Position, string Raw, string File);

    private sealed record Series(string SpecPath, string Study, string SeriesUid, string Frame, string[] Orientation, IReadOnlyList<Instance> Instances);

    /// <summary>
    /// The series both writers write: orientation strings, one position per instance along the normal and the
    /// stored pixels (value = 1 + column + 40·row + 1200·(instance number − 1)) in one raw little-endian file each.
    /// "-descending" numbers the instances from the far end of the normal, as a head-first axial CT comes.
    /// </summary>
    private Series WriteSpec(string orientation, string name)
    {
        var (row, column) = orientation.Split('-')[0] switch
        {
            "axial" => (new Vector3D(1, 0, 0), new Vector3D(0, 1, 0)),
            "coronal" => (new Vector3D(1, 0, 0), new Vector3D(0, 0, -1)),
            "sagittal" => (new Vector3D(0, 1, 0), new Vector3D(0, 0, -1)),
            "oblique" => (Rotate(new Vector3D(1, 0, 0)), Rotate(new Vector3D(0, 1, 0))),
            _ => throw new ArgumentOutOfRangeException(nameof(orientation), orientation, "unknown orientation"),
        };
        var descending = orientation.EndsWith("-descending", StringComparison.Ordinal);
        var normal = row.Cross(column);
        var instances = new List<Instance>();
        for (var n = 1; n <= Slices; n++)
        {
            var along = descending ? Slices - n : n - 1;
            var position = Origin + (normal * (along * SliceSpacing));
            var raw = _work.File($"{name}-{n}.raw");
            var pixels = new byte[Columns * Rows * 2];
            for (var p = 0; p < Columns * Rows; p++)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(pixels.AsSpan(p * 2), (ushort)(1 + p + (Columns * Rows * (n - 1))));
            }
            File.WriteAllBytes(raw, pixels);
            // File names follow neither instance nor position order (3n mod 7 is a permutation).
            instances.Add(new Instance(n, Implementation.NewUid(), [F(position.X, 6), F(position.Y, 6), F(position.Z, 6)], raw, $"im{(n * 3) % Slices}.dcm"));
        }
        var series = new Series(_work.File($"{name}.json"), Implementation.NewUid(), Implementation.NewUid(), Implementation.NewUid(),
            [F(row.X, 8), F(row.Y, 8), F(row.Z, 8), F(column.X, 8), F(column.Y, 8), F(column.Z, 8)], instances);
        File.WriteAllText(series.SpecPath, JsonSerializer.Serialize(new
        {
            study = series.Study,
            series = series.SeriesUid,
            frame = series.Frame,
            orientation = series.Orientation,
            pixelSpacing = new[] { "0.7", "0.9" },
            sliceThickness = "3",
            rows = Rows,
            columns = Columns,
            intercept = Intercept,
            instances = instances.Select(i => new { number = i.Number, uid = i.Uid, position = i.Position, raw = i.Raw, file = i.File }),
        }, Json));
        return series;
    }

    /// <summary>20° about the patient's x axis, then 20° about y: a double-oblique plane like a tilted MR slab.</summary>
    private static Vector3D Rotate(Vector3D v)
    {
        var t = 20 * Math.PI / 180;
        var (c, s) = (Math.Cos(t), Math.Sin(t));
        var aboutX = new Vector3D(v.X, (c * v.Y) - (s * v.Z), (s * v.Y) + (c * v.Z));
        return new Vector3D((c * aboutX.X) + (s * aboutX.Z), aboutX.Y, (-s * aboutX.X) + (c * aboutX.Z));
    }

    private static string F(double value, int decimals) => value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    /// <summary>dump2dcm input for one instance: the same attribute values as the pydicom writer, pixels read from the raw file.</summary>
    private static string Dump(Series series, Instance instance) => $"""
        (0008,0008) CS [ORIGINAL\PRIMARY\AXIAL]
        (0008,0016) UI [1.2.840.10008.5.1.4.1.1.2]
        (0008,0018) UI [{instance.Uid}]
        (0008,0020) DA [20260101]
        (0008,0030) TM [120000]
        (0008,0060) CS [CT]
        (0010,0010) PN [Interop^Series]
        (0010,0020) LO [INTEROP]
        (0018,0050) DS [3]
        (0020,000d) UI [{series.Study}]
        (0020,000e) UI [{series.SeriesUid}]
        (0020,0011) IS [1]
        (0020,0013) IS [{instance.Number}]
        (0020,0032) DS [{string.Join('\\', instance.Position)}]
        (0020,0037) DS [{string.Join('\\', series.Orientation)}]
        (0020,0052) UI [{series.Frame}]
        (0028,0002) US 1
        (0028,0004) CS [MONOCHROME2]
        (0028,0010) US {Rows}
        (0028,0011) US {Columns}
        (0028,0030) DS [0.7\0.9]
        (0028,0100) US 16
        (0028,0101) US 16
        (0028,0102) US 15
        (0028,0103) US 0
        (0028,1052) DS [{Intercept}]
        (0028,1053) DS [1]
        (0028,1054) LO [HU]
        (7fe0,0010) OW ={instance.Raw}
        """;
}
