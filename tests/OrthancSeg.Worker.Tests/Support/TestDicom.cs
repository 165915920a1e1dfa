using OrthancSeg.Dicom;

namespace OrthancSeg.Tests.Support;

/// <summary>A painted region of a test SEG: which slice (index into the image series) and which segment.</summary>
internal sealed record PaintedSlice(int SliceIndex, int SegmentNumber);

/// <summary>One segment of a test SEG.</summary>
internal sealed record TestSegment(int Number, string Label, string AlgorithmType = "MANUAL");

/// <summary>
/// Small, valid DICOM for tests, written with the project's own codec: an axial CT series and SEGs on it
/// (BINARY 1-bit like highdicom, or LABELMAP 8-bit like OHIF 3.13). Pixel data of the CT is zeros; only
/// geometry and identity matter to the worker's records.
/// </summary>
internal sealed class TestSeries
{
    public TestSeries(int slices = 4, int rows = 8, int columns = 8, double spacing = 2.5, string modality = "CT",
        string description = "Abdomen liver", string? bodyPart = "ABDOMEN", string? studyInstanceUid = null)
    {
        Slices = slices;
        Rows = rows;
        Columns = columns;
        Spacing = spacing;
        Modality = modality;
        Description = description;
        BodyPart = bodyPart;
        StudyInstanceUid = studyInstanceUid ?? Implementation.NewUid();
        SopInstanceUids = Enumerable.Range(0, slices).Select(_ => Implementation.NewUid()).ToArray();
    }

    public int Slices { get; }

    public int Rows { get; }

    public int Columns { get; }

    public double Spacing { get; }

    public string Modality { get; }

    public string Description { get; }

    public string? BodyPart { get; }

    public string PatientId { get; init; } = "TEST-" + Guid.NewGuid().ToString("N")[..8];

    public string StudyInstanceUid { get; }

    public string SeriesInstanceUid { get; } = Implementation.NewUid();

    public string FrameOfReferenceUid { get; } = Implementation.NewUid();

    /// <summary>In slice order (ascending z).</summary>
    public string[] SopInstanceUids { get; }

    public double[] PositionOf(int slice) => [-10, -10, 100 + (slice * Spacing)];

    public IEnumerable<DicomFile> Files()
    {
        for (var k = 0; k < Slices; k++)
        {
            var ds = new DicomDataset();
            Patient(ds);
            ds.SetString(DicomTags.SOPClassUID, DicomVR.UI, SopClasses.CTImage);
            ds.SetString(DicomTags.SOPInstanceUID, DicomVR.UI, SopInstanceUids[k]);
            ds.SetString(DicomTags.Modality, DicomVR.CS, Modality);
            ds.SetString(DicomTags.SeriesDescription, DicomVR.LO, Description);
            if (BodyPart is not null)
            {
                ds.SetString(DicomTags.BodyPartExamined, DicomVR.CS, BodyPart);
            }
            ds.SetString(DicomTags.SeriesInstanceUID, DicomVR.UI, SeriesInstanceUid);
            ds.SetString(DicomTags.SeriesNumber, DicomVR.IS, "2");
            // Reverse instance numbers so that ordering by position, not by number, is what makes the case right.
            ds.SetString(DicomTags.InstanceNumber, DicomVR.IS, (Slices - k).ToString(System.Globalization.CultureInfo.InvariantCulture));
            ds.SetString(DicomTags.FrameOfReferenceUID, DicomVR.UI, FrameOfReferenceUid);
            ds.SetNumbers(DicomTags.ImagePositionPatient, DicomVR.DS, PositionOf(k));
            ds.SetNumbers(DicomTags.ImageOrientationPatient, DicomVR.DS, [1, 0, 0, 0, 1, 0]);
            ds.SetNumbers(DicomTags.PixelSpacing, DicomVR.DS, [0.8, 0.8]);
            ds.SetNumbers(DicomTags.SliceThickness, DicomVR.DS, [Spacing]);
            ds.SetUInt16(DicomTags.SamplesPerPixel, 1);
            ds.SetString(DicomTags.PhotometricInterpretation, DicomVR.CS, "MONOCHROME2");
            ds.SetUInt16(DicomTags.Rows, (ushort)Rows);
            ds.SetUInt16(DicomTags.Columns, (ushort)Columns);
            ds.SetUInt16(DicomTags.BitsAllocated, 16);
            ds.SetUInt16(DicomTags.BitsStored, 16);
            ds.SetUInt16(DicomTags.HighBit, 15);
            ds.SetUInt16(DicomTags.PixelRepresentation, 1);
            ds.SetNumbers(DicomTags.RescaleIntercept, DicomVR.DS, [0]);
            ds.SetNumbers(DicomTags.RescaleSlope, DicomVR.DS, [1]);
            ds.SetBytes(DicomTags.PixelData, DicomVR.OW, new byte[Rows * Columns * 2]);
            yield return DicomWriter.CreateFile(ds);
        }
    }

    /// <summary>A SEG on this series. <paramref name="labelMap"/> writes OHIF 3.13's LABELMAP form, else BINARY 1-bit.</summary>
    public DicomFile Seg(IReadOnlyList<TestSegment> segments, IReadOnlyList<PaintedSlice> painted, bool labelMap = false,
        string? author = null, string? referencedSeriesInstanceUid = null, string? sopInstanceUid = null,
        int? rows = null, int? columns = null, Func<int, string>? referencedSop = null, bool blank = false)
    {
        var r = rows ?? Rows;
        var c = columns ?? Columns;
        var ds = new DicomDataset();
        Patient(ds);
        ds.SetString(DicomTags.SOPClassUID, DicomVR.UI, labelMap ? SopClasses.LabelMapSegmentation : SopClasses.Segmentation);
        ds.SetString(DicomTags.SOPInstanceUID, DicomVR.UI, sopInstanceUid ?? Implementation.NewUid());
        ds.SetString(DicomTags.Modality, DicomVR.CS, "SEG");
        ds.SetString(DicomTags.SeriesInstanceUID, DicomVR.UI, Implementation.NewUid());
        ds.SetString(DicomTags.SeriesNumber, DicomVR.IS, "3101");
        ds.SetString(DicomTags.InstanceNumber, DicomVR.IS, "1");
        ds.SetString(DicomTags.SeriesDescription, DicomVR.LO, "Segmentation");
        ds.SetString(DicomTags.ContentDate, DicomVR.DA, DateTime.UtcNow.ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture));
        ds.SetString(DicomTags.ContentTime, DicomVR.TM, DateTime.UtcNow.ToString("HHmmss.ffffff", System.Globalization.CultureInfo.InvariantCulture));
        ds.SetString(DicomTags.ContentLabel, DicomVR.CS, "SEG");
        if (author is not null)
        {
            ds.SetString(DicomTags.ContentCreatorName, DicomVR.PN, author);
        }
        ds.SetString(DicomTags.FrameOfReferenceUID, DicomVR.UI, FrameOfReferenceUid);
        ds.SetString(DicomTags.SegmentationType, DicomVR.CS, labelMap ? "LABELMAP" : "BINARY");
        var referenced = painted.Select(p => p.SliceIndex).Distinct().Order().ToList();
        ds.SetSequence(DicomTags.ReferencedSeriesSequence, new DicomDataset()
            .SetString(DicomTags.SeriesInstanceUID, DicomVR.UI, referencedSeriesInstanceUid ?? SeriesInstanceUid)
            .SetSequence(DicomTags.ReferencedInstanceSequence, referenced.Select(k => new DicomDataset()
                .SetString(DicomTags.ReferencedSOPClassUID, DicomVR.UI, SopClasses.CTImage)
                .SetString(DicomTags.ReferencedSOPInstanceUID, DicomVR.UI, Sop(k))).ToArray()));
        ds.SetSequence(DicomTags.SegmentSequence, segments.Select(s => new DicomDataset()
            .SetUInt16(DicomTags.SegmentNumber, (ushort)s.Number)
            .SetString(DicomTags.SegmentLabel, DicomVR.LO, s.Label)
            .SetString(DicomTags.SegmentAlgorithmType, DicomVR.CS, s.AlgorithmType)).ToArray());
        ds.SetSequence(DicomTags.SharedFunctionalGroupsSequence, new DicomDataset()
            .SetSequence(DicomTags.PlaneOrientationSequence, new DicomDataset().SetNumbers(DicomTags.ImageOrientationPatient, DicomVR.DS, [1, 0, 0, 0, 1, 0]))
            .SetSequence(DicomTags.PixelMeasuresSequence, new DicomDataset()
                .SetNumbers(DicomTags.PixelSpacing, DicomVR.DS, [0.8, 0.8])
                .SetNumbers(DicomTags.SliceThickness, DicomVR.DS, [Spacing])));

        // LABELMAP: one frame per painted slice holding every segment; BINARY: one frame per (slice, segment).
        var frames = labelMap
            ? referenced.Select(k => (Slice: k, Segment: (int?)null)).ToList()
            : painted.Select(p => (Slice: p.SliceIndex, Segment: (int?)p.SegmentNumber)).Distinct().ToList();
        ds.SetSequence(DicomTags.PerFrameFunctionalGroupsSequence, frames.Select(f =>
        {
            var group = new DicomDataset()
                .SetSequence(DicomTags.DerivationImageSequence, new DicomDataset()
                    .SetSequence(DicomTags.SourceImageSequence, new DicomDataset()
                        .SetString(DicomTags.ReferencedSOPClassUID, DicomVR.UI, SopClasses.CTImage)
                        .SetString(DicomTags.ReferencedSOPInstanceUID, DicomVR.UI, Sop(f.Slice))))
                .SetSequence(DicomTags.PlanePositionSequence, new DicomDataset().SetNumbers(DicomTags.ImagePositionPatient, DicomVR.DS, PositionOf(f.Slice)));
            if (f.Segment is { } number)
            {
                group.SetSequence(DicomTags.SegmentIdentificationSequence, new DicomDataset().SetUInt16(DicomTags.ReferencedSegmentNumber, (ushort)number));
            }
            return group;
        }).ToArray());

        ds.SetString(DicomTags.NumberOfFrames, DicomVR.IS, frames.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        ds.SetUInt16(DicomTags.SamplesPerPixel, 1);
        ds.SetString(DicomTags.PhotometricInterpretation, DicomVR.CS, "MONOCHROME2");
        ds.SetUInt16(DicomTags.Rows, (ushort)r);
        ds.SetUInt16(DicomTags.Columns, (ushort)c);
        var pixels = r * c;
        byte[] data;
        if (labelMap)
        {
            ds.SetUInt16(DicomTags.BitsAllocated, 8);
            ds.SetUInt16(DicomTags.BitsStored, 8);
            ds.SetUInt16(DicomTags.HighBit, 7);
            data = new byte[frames.Count * pixels];
            for (var f = 0; f < frames.Count; f++)
            {
                // Each segment paints its own pixel of the slice.
                foreach (var p in painted.Where(p => p.SliceIndex == frames[f].Slice))
                {
                    data[(f * pixels) + p.SegmentNumber] = (byte)p.SegmentNumber;
                }
            }
        }
        else
        {
            ds.SetUInt16(DicomTags.BitsAllocated, 1);
            ds.SetUInt16(DicomTags.BitsStored, 1);
            ds.SetUInt16(DicomTags.HighBit, 0);
            data = new byte[((frames.Count * pixels) + 7) / 8];
            for (var f = 0; f < frames.Count; f++)
            {
                // Set the frame's middle pixel: frames start mid-byte when Rows·Columns is not a multiple of 8.
                var bit = (f * pixels) + (pixels / 2);
                data[bit / 8] |= (byte)(1 << (bit % 8));
            }
        }
        if (blank)
        {
            Array.Clear(data);
        }
        ds.SetUInt16(DicomTags.PixelRepresentation, 0);
        ds.SetString(DicomTags.LossyImageCompression, DicomVR.CS, "00");
        ds.SetBytes(DicomTags.PixelData, DicomVR.OB, data);
        return DicomWriter.CreateFile(ds);

        string Sop(int k) => referencedSop?.Invoke(k) ?? SopInstanceUids[k];
    }

    private void Patient(DicomDataset ds)
    {
        ds.SetString(DicomTags.PatientName, DicomVR.PN, "Test^Patient");
        ds.SetString(DicomTags.PatientID, DicomVR.LO, PatientId);
        ds.SetString(DicomTags.StudyInstanceUID, DicomVR.UI, StudyInstanceUid);
        ds.SetString(DicomTags.StudyDate, DicomVR.DA, "20260101");
        ds.SetString(DicomTags.StudyID, DicomVR.SH, "1");
        ds.SetString(DicomTags.AccessionNumber, DicomVR.SH, null);
    }
}
