using System.Buffers.Binary;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Volumes;

/// <summary>Single-frame CT-like instances built in memory, one per position, with 16-bit stored values.</summary>
internal static class SyntheticSeries
{
    public static readonly double[] Axial = [1, 0, 0, 0, 1, 0];

    public const string StudyUid = "1.2.826.0.1.3680043.8.498.1";
    public const string SeriesUid = "1.2.826.0.1.3680043.8.498.2";
    public const string FrameOfReferenceUid = "1.2.826.0.1.3680043.8.498.3";

    public static string SopUid(int instance) => $"1.2.826.0.1.3680043.8.498.10.{instance}";

    /// <summary>Instance i (1-based InstanceNumber) at positions[i-1]; <paramref name="stored"/> gives the raw value at (instance index, row, column).</summary>
    public static List<DicomFile> Create(int rows, int columns, IReadOnlyList<Vector3D> positions, double[]? orientation = null,
        double[]? pixelSpacing = null, Func<int, int, int, ushort>? stored = null, Action<int, DicomDataset>? customise = null)
    {
        orientation ??= Axial;
        pixelSpacing ??= [0.5, 0.75];
        stored ??= (i, r, c) => (ushort)((i * 100) + (r * 10) + c);
        var files = new List<DicomFile>();
        for (var i = 0; i < positions.Count; i++)
        {
            var ds = new DicomDataset();
            ds.SetString(DicomTags.SOPClassUID, DicomVR.UI, SopClasses.CTImage);
            ds.SetString(DicomTags.SOPInstanceUID, DicomVR.UI, SopUid(i + 1));
            ds.SetStrings(DicomTags.ImageType, DicomVR.CS, ["ORIGINAL", "PRIMARY", "AXIAL"]);
            ds.SetString(DicomTags.Modality, DicomVR.CS, "CT");
            ds.SetString(DicomTags.PatientName, DicomVR.PN, "Test^Patient");
            ds.SetString(DicomTags.PatientID, DicomVR.LO, "P1");
            ds.SetString(DicomTags.StudyInstanceUID, DicomVR.UI, StudyUid);
            ds.SetString(DicomTags.SeriesInstanceUID, DicomVR.UI, SeriesUid);
            ds.SetString(DicomTags.FrameOfReferenceUID, DicomVR.UI, FrameOfReferenceUid);
            ds.SetNumbers(DicomTags.InstanceNumber, DicomVR.IS, [i + 1]);
            ds.SetNumbers(DicomTags.ImagePositionPatient, DicomVR.DS, [positions[i].X, positions[i].Y, positions[i].Z]);
            ds.SetNumbers(DicomTags.ImageOrientationPatient, DicomVR.DS, orientation);
            ds.SetNumbers(DicomTags.PixelSpacing, DicomVR.DS, pixelSpacing);
            ds.SetNumbers(DicomTags.SliceThickness, DicomVR.DS, [2]);
            ds.SetUInt16(DicomTags.SamplesPerPixel, 1);
            ds.SetString(DicomTags.PhotometricInterpretation, DicomVR.CS, "MONOCHROME2");
            ds.SetUInt16(DicomTags.Rows, (ushort)rows);
            ds.SetUInt16(DicomTags.Columns, (ushort)columns);
            ds.SetUInt16(DicomTags.BitsAllocated, 16);
            ds.SetUInt16(DicomTags.BitsStored, 16);
            ds.SetUInt16(DicomTags.HighBit, 15);
            ds.SetUInt16(DicomTags.PixelRepresentation, 0);
            var pixels = new byte[rows * columns * 2];
            for (var r = 0; r < rows; r++)
            {
                for (var c = 0; c < columns; c++)
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(pixels.AsSpan(((r * columns) + c) * 2), stored(i, r, c));
                }
            }
            ds.SetBytes(DicomTags.PixelData, DicomVR.OW, pixels);
            customise?.Invoke(i, ds);
            files.Add(new DicomFile(Meta(TransferSyntaxes.ExplicitVRLittleEndian), ds));
        }
        return files;
    }

    public static DicomDataset Meta(string transferSyntax) =>
        new DicomDataset().SetString(DicomTags.TransferSyntaxUID, DicomVR.UI, transferSyntax);

    public static List<Vector3D> AxialPositions(params double[] z) => z.Select(v => new Vector3D(-100, -80, v)).ToList();
}
