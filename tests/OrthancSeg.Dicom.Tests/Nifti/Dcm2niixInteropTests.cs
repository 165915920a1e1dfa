using System.Globalization;
using OrthancSeg.Dicom.Nifti;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Nifti;

/// <summary>
/// dcm2niix is the reference DICOM → NIfTI converter; it flips the row order and builds its own
/// header. Reading its output must put every voxel value at the same patient position it had in
/// the DICOM series, whatever voxel order dcm2niix chose.
/// </summary>
public sealed class Dcm2niixInteropTests : IDisposable
{
    private const string SeriesWriter = """
        import sys, os, json
        import numpy as np, pydicom
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian, generate_uid
        raw, out, g = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        nx, ny, nz = g['columns'], g['rows'], g['slices']
        vol = np.fromfile(raw, dtype='<i2', offset=352).reshape(nz, ny, nx)
        ct = '1.2.840.10008.5.1.4.1.1.2'
        study, series, frame = generate_uid(), generate_uid(), generate_uid()
        for k in range(nz):
            uid = generate_uid()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID = ct, uid, ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.is_little_endian, ds.is_implicit_VR = True, False
            ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = ct, uid, 'CT'
            ds.PatientName, ds.PatientID = 'Interop^Test', 'INTEROP'
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
            ds.StudyDate, ds.StudyTime, ds.SeriesNumber, ds.InstanceNumber = '20260101', '120000', 1, k + 1
            ds.ImagePositionPatient = [f'{v:.6f}' for v in np.array(g['origin']) + k * g['spacing'][2] * np.array(g['slice'])]
            ds.ImageOrientationPatient = [f'{v:.8f}' for v in g['row'] + g['column']]
            ds.PixelSpacing, ds.SliceThickness = [g['spacing'][1], g['spacing'][0]], g['spacing'][2]
            ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = ny, nx, 1, 'MONOCHROME2'
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.RescaleIntercept, ds.RescaleSlope = 0, 1
            ds.PixelData = np.ascontiguousarray(vol[k]).tobytes()
            ds.save_as(os.path.join(out, f'{k:04d}.dcm'), write_like_original=False)
        """;

    private readonly string _directory = Directory.CreateTempSubdirectory("nifti-dcm2niix-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData("axial")]
    [InlineData("oblique")]
    public void Dcm2niix_output_reads_with_every_voxel_at_its_DICOM_position(string orientation)
    {
        var geometry = orientation == "axial" ? TestVolumes.Axial(16, 12, 6) : TestVolumes.Oblique(16, 12, 6);
        var original = TestVolumes.CtLike(geometry, seed: 21);
        var raw = Path.Combine(_directory, "original.nii");
        NiftiWriter.WriteFile(original, raw);
        var dicom = Directory.CreateDirectory(Path.Combine(_directory, "dicom")).FullName;
        var output = Directory.CreateDirectory(Path.Combine(_directory, "out")).FullName;
        ExternalTool.RunPython(SeriesWriter, raw, dicom, GeometryJson(geometry));
        ExternalTool.Run("/usr/bin/dcm2niix", "-z", "y", "-f", "converted", "-o", output, dicom);

        var image = NiftiReader.ReadFile(Path.Combine(output, "converted.nii.gz"));
        var converted = image.ToVolume(VoxelType.Int16);
        Assert.Equal(geometry.VoxelCount, converted.Geometry.VoxelCount);
        var expected = original.AsInt16();
        var actual = converted.AsInt16();
        var g = converted.Geometry;
        for (var k = 0; k < g.Slices; k++)
        {
            for (var j = 0; j < g.Rows; j++)
            {
                for (var i = 0; i < g.Columns; i++)
                {
                    var offset = g.PositionOf(i, j, k) - geometry.Origin;
                    var oi = offset.Dot(geometry.RowDirection) / geometry.Spacing.X;
                    var oj = offset.Dot(geometry.ColumnDirection) / geometry.Spacing.Y;
                    var ok = offset.Dot(geometry.SliceDirection) / geometry.Spacing.Z;
                    int ri = (int)Math.Round(oi), rj = (int)Math.Round(oj), rk = (int)Math.Round(ok);
                    Assert.True(Math.Abs(oi - ri) < 0.01 && Math.Abs(oj - rj) < 0.01 && Math.Abs(ok - rk) < 0.01,
                        $"dcm2niix voxel ({i}, {j}, {k}) lies at ({oi:F3}, {oj:F3}, {ok:F3}) of the original grid");
                    Assert.Equal(expected[(((rk * geometry.Rows) + rj) * geometry.Columns) + ri], actual[(((k * g.Rows) + j) * g.Columns) + i]);
                }
            }
        }
    }

    private static string GeometryJson(VolumeGeometry g)
    {
        static string V(Vector3D v) => string.Create(CultureInfo.InvariantCulture, $"[{v.X:R}, {v.Y:R}, {v.Z:R}]");
        return $$"""{"columns": {{g.Columns}}, "rows": {{g.Rows}}, "slices": {{g.Slices}}, "origin": {{V(g.Origin)}}, "spacing": {{V(g.Spacing)}}, "row": {{V(g.RowDirection)}}, "column": {{V(g.ColumnDirection)}}, "slice": {{V(g.SliceDirection)}}}""";
    }
}
