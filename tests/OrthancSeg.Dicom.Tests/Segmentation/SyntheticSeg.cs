using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Segmentation;

/// <summary>SEG data sets built by hand in the shapes different producers write.</summary>
internal static class SyntheticSeg
{
    /// <summary>One frame: pixels in the image's own row/column order (one byte per pixel: 0/1, a fraction, or a segment number).</summary>
    public sealed record Frame(int Segment, int Slice, byte[] Pixels, bool Reference = true, bool Position = true);

    public enum Packing { Contiguous, PerFrameByteAligned }

    public static DicomDataset Create(SeriesGrid grid, string type, IReadOnlyList<(int Number, string Label)> segments, IReadOnlyList<Frame> frames,
        bool flipColumns = false, Packing packing = Packing.Contiguous, bool segmentIdentification = true)
    {
        var g = grid.Geometry;
        var ds = new DicomDataset();
        ds.SetString(DicomTags.SOPClassUID, DicomVR.UI, type == "LABELMAP" ? SopClasses.LabelMapSegmentation : SopClasses.Segmentation);
        ds.SetString(DicomTags.SOPInstanceUID, DicomVR.UI, Implementation.NewUid());
        ds.SetString(DicomTags.Modality, DicomVR.CS, "SEG");
        ds.SetString(DicomTags.StudyInstanceUID, DicomVR.UI, grid.StudyInstanceUid);
        ds.SetString(DicomTags.SeriesInstanceUID, DicomVR.UI, Implementation.NewUid());
        ds.SetString(DicomTags.FrameOfReferenceUID, DicomVR.UI, grid.FrameOfReferenceUid);
        ds.SetUInt16(DicomTags.Rows, (ushort)g.Rows);
        ds.SetUInt16(DicomTags.Columns, (ushort)g.Columns);
        ds.SetNumbers(DicomTags.NumberOfFrames, DicomVR.IS, [frames.Count]);
        ds.SetUInt16(DicomTags.SamplesPerPixel, 1);
        ds.SetString(DicomTags.PhotometricInterpretation, DicomVR.CS, "MONOCHROME2");
        var bits = type == "BINARY" ? (ushort)1 : (ushort)8;
        ds.SetUInt16(DicomTags.BitsAllocated, bits);
        ds.SetUInt16(DicomTags.BitsStored, bits);
        ds.SetUInt16(DicomTags.HighBit, (ushort)(bits - 1));
        ds.SetUInt16(DicomTags.PixelRepresentation, 0);
        ds.SetString(DicomTags.SegmentationType, DicomVR.CS, type);
        if (type == "FRACTIONAL")
        {
            ds.SetString(DicomTags.SegmentationFractionalType, DicomVR.CS, "PROBABILITY");
            ds.SetUInt16(DicomTags.MaximumFractionalValue, 255);
        }
        var tissue = new CodedConcept("T-D0050", "SRT", "Tissue").ToItemForTests();
        ds.SetSequence(DicomTags.SegmentSequence, segments.Select(s => new DicomDataset()
            .SetSequence(DicomTags.SegmentedPropertyCategoryCodeSequence, tissue)
            .SetUInt16(DicomTags.SegmentNumber, (ushort)s.Number)
            .SetString(DicomTags.SegmentLabel, DicomVR.LO, s.Label)
            .SetString(DicomTags.SegmentAlgorithmType, DicomVR.CS, "MANUAL")
            .SetString(DicomTags.SegmentAlgorithmName, DicomVR.LO, "OHIF Brush")
            .SetSequence(DicomTags.SegmentedPropertyTypeCodeSequence, tissue)).ToArray());

        var row = flipColumns ? -g.RowDirection : g.RowDirection;
        var column = g.ColumnDirection;
        ds.SetSequence(DicomTags.SharedFunctionalGroupsSequence, new DicomDataset()
            .SetSequence(DicomTags.PlaneOrientationSequence, new DicomDataset().SetNumbers(DicomTags.ImageOrientationPatient, DicomVR.DS, [row.X, row.Y, row.Z, column.X, column.Y, column.Z]))
            // OHIF writes the distance between stored frames here, not the image's thickness.
            .SetSequence(DicomTags.PixelMeasuresSequence, new DicomDataset()
                .SetNumbers(DicomTags.PixelSpacing, DicomVR.DS, [g.Spacing.Y, g.Spacing.X])
                .SetNumbers(DicomTags.SliceThickness, DicomVR.DS, [0])));

        var perFrame = new List<DicomDataset>();
        var n = g.Rows * g.Columns;
        var stored = new List<byte[]>();
        foreach (var frame in frames)
        {
            var item = new DicomDataset();
            if (frame.Reference)
            {
                item.SetSequence(DicomTags.DerivationImageSequence, new DicomDataset().SetSequence(DicomTags.SourceImageSequence, new DicomDataset()
                    .SetString(DicomTags.ReferencedSOPInstanceUID, DicomVR.UI, grid.SopInstanceUids[frame.Slice])
                    .SetNumbers(DicomTags.ReferencedFrameNumber, DicomVR.IS, [1])));
            }
            if (frame.Position)
            {
                var ipp = grid.SlicePositions[frame.Slice] + (flipColumns ? g.RowDirection * ((g.Columns - 1) * g.Spacing.X) : default);
                item.SetSequence(DicomTags.PlanePositionSequence, new DicomDataset().SetNumbers(DicomTags.ImagePositionPatient, DicomVR.DS, [ipp.X, ipp.Y, ipp.Z]));
            }
            if (type != "LABELMAP" && segmentIdentification)
            {
                item.SetSequence(DicomTags.SegmentIdentificationSequence, new DicomDataset().SetUInt16(DicomTags.ReferencedSegmentNumber, (ushort)frame.Segment));
            }
            perFrame.Add(item);
            var pixels = frame.Pixels;
            if (flipColumns)
            {
                pixels = new byte[n];
                for (var r = 0; r < g.Rows; r++)
                {
                    for (var c = 0; c < g.Columns; c++)
                    {
                        pixels[(r * g.Columns) + (g.Columns - 1 - c)] = frame.Pixels[(r * g.Columns) + c];
                    }
                }
            }
            stored.Add(pixels);
        }
        ds.SetSequence(DicomTags.PerFrameFunctionalGroupsSequence, perFrame.ToArray());
        ds.SetBytes(DicomTags.PixelData, type == "BINARY" ? DicomVR.OW : DicomVR.OB, type == "BINARY" ? Pack(stored, n, packing) : stored.SelectMany(p => p).ToArray());
        return ds;
    }

    public static byte[] Pack(List<byte[]> frames, int n, Packing packing)
    {
        var frameBits = packing == Packing.Contiguous ? n : (n + 7) / 8 * 8;
        var bytes = new byte[((frames.Count * frameBits) + 7) / 8];
        for (var f = 0; f < frames.Count; f++)
        {
            for (var p = 0; p < n; p++)
            {
                if (frames[f][p] != 0)
                {
                    var bit = (f * frameBits) + p;
                    bytes[bit / 8] |= (byte)(1 << (bit % 8));
                }
            }
        }
        return bytes;
    }

    /// <summary>A frame with the given (row, column) pixels set to <paramref name="value"/>.</summary>
    public static byte[] Pixels(SeriesGrid grid, byte value, params (int Row, int Column)[] set)
    {
        var pixels = new byte[grid.Geometry.SliceVoxelCount];
        foreach (var (r, c) in set)
        {
            pixels[(r * grid.Geometry.Columns) + c] = value;
        }
        return pixels;
    }

    private static DicomDataset ToItemForTests(this CodedConcept code) => new DicomDataset()
        .SetString(DicomTags.CodeValue, DicomVR.SH, code.Value)
        .SetString(DicomTags.CodingSchemeDesignator, DicomVR.SH, code.Scheme)
        .SetString(DicomTags.CodeMeaning, DicomVR.LO, code.Meaning);

    public static DicomFile File(DicomDataset ds) => new(new DicomDataset().SetString(DicomTags.TransferSyntaxUID, DicomVR.UI, TransferSyntaxes.ExplicitVRLittleEndian), ds);
}
