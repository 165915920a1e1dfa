using System.Buffers.Binary;

namespace OrthancSeg.Dicom.Tests.Codec;

/// <summary>Data sets built in code, shaped like the SEGs the worker writes.</summary>
internal static class SampleDatasets
{
    public const int Rows = 3;
    public const int Columns = 5;
    public const int Frames = 3;

    /// <summary>
    /// Sequences nested three deep, an empty sequence, multi-valued text and binary values, odd-length text, UIDs
    /// and pixel data, UTF-8 text, AT values: everything the writer must encode and other readers must agree on.
    /// </summary>
    public static DicomDataset Segmentation()
    {
        var dataset = new DicomDataset()
            .SetString(DicomTags.SpecificCharacterSet, DicomVR.CS, "ISO_IR 192")
            .SetStrings(DicomTags.ImageType, DicomVR.CS, ["DERIVED", "PRIMARY"])
            .SetString(DicomTags.SOPClassUID, DicomVR.UI, SopClasses.Segmentation)
            .SetString(DicomTags.SOPInstanceUID, DicomVR.UI, "1.2.826.0.1.3680043.8.498.123")
            .SetString(DicomTags.Modality, DicomVR.CS, "SEG")
            .SetString(DicomTags.PatientName, DicomVR.PN, "Müller^Jürgen")
            .SetString(DicomTags.PatientID, DicomVR.LO, "ID7")
            .SetString(DicomTags.StudyInstanceUID, DicomVR.UI, "1.2.3.44")
            .SetString(DicomTags.SeriesInstanceUID, DicomVR.UI, "1.2.3.4.555")
            .SetString(DicomTags.ContentLabel, DicomVR.CS, "LIVER")
            .SetString(DicomTags.SegmentationType, DicomVR.CS, "BINARY")
            .SetNumbers(DicomTags.NumberOfFrames, DicomVR.IS, [Frames])
            .SetUInt16(DicomTags.SamplesPerPixel, 1)
            .SetString(DicomTags.PhotometricInterpretation, DicomVR.CS, "MONOCHROME2")
            .SetUInt16(DicomTags.Rows, Rows)
            .SetUInt16(DicomTags.Columns, Columns)
            .SetUInt16(DicomTags.BitsAllocated, 8)
            .SetUInt16(DicomTags.BitsStored, 8)
            .SetUInt16(DicomTags.HighBit, 7)
            .SetUInt16(DicomTags.PixelRepresentation, 0)
            .SetNumbers(DicomTags.PixelSpacing, DicomVR.DS, [0.5, 0.703125]);
        dataset.SetSequence(DicomTags.SegmentSequence,
            Segment(1, "Liver", "10200004", "Liver"),
            Segment(2, "Tumour", "108369006", "Neoplasm"));
        dataset.SetSequence(DicomTags.DerivationImageSequence);
        var frames = new DicomDataset[Frames];
        for (var f = 0; f < Frames; f++)
        {
            var frame = new DicomDataset();
            frame.SetSequence(DicomTags.FrameContentSequence, new DicomDataset().SetUInt32(DicomTags.DimensionIndexValues, 1, (uint)f + 1));
            frame.SetSequence(DicomTags.PlanePositionSequence,
                new DicomDataset().SetNumbers(DicomTags.ImagePositionPatient, DicomVR.DS, [-158.135803, -179.035797, -75.7 + (2.5 * f)]));
            frame.SetSequence(DicomTags.SegmentIdentificationSequence, new DicomDataset().SetUInt16(DicomTags.ReferencedSegmentNumber, (ushort)((f % 2) + 1)));
            frames[f] = frame;
        }
        dataset.SetSequence(DicomTags.PerFrameFunctionalGroupsSequence, frames);
        var pointer = new byte[8];
        BinaryPrimitives.WriteUInt16LittleEndian(pointer, 0x0062);
        BinaryPrimitives.WriteUInt16LittleEndian(pointer.AsSpan(2), 0x000B);
        BinaryPrimitives.WriteUInt16LittleEndian(pointer.AsSpan(4), 0x0020);
        BinaryPrimitives.WriteUInt16LittleEndian(pointer.AsSpan(6), 0x9113);
        dataset.SetSequence(DicomTags.DimensionIndexSequence, new DicomDataset().SetBytes(DicomTags.DimensionIndexPointer, DicomVR.AT, pointer));
        // 45 bytes: odd, so the writer must pad the pixel data too.
        var pixels = new byte[Rows * Columns * Frames];
        for (var i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (byte)(i * 37 % 251);
        }
        dataset.Set(new DicomElement(DicomTags.PixelData, DicomVR.OB, pixels));
        return dataset;
    }

    private static DicomDataset Segment(ushort number, string label, string code, string meaning) => new DicomDataset()
        .SetSequence(DicomTags.SegmentedPropertyCategoryCodeSequence, Code("91723000", "SCT", "Anatomical Structure"))
        .SetUInt16(DicomTags.SegmentNumber, number)
        .SetString(DicomTags.SegmentLabel, DicomVR.LO, label)
        .SetString(DicomTags.SegmentAlgorithmType, DicomVR.CS, "MANUAL")
        .SetUInt16(DicomTags.RecommendedDisplayCIELabValue, 21169, 18417, 37604)
        .SetSequence(DicomTags.SegmentedPropertyTypeCodeSequence, Code(code, "SCT", meaning));

    private static DicomDataset Code(string value, string scheme, string meaning) => new DicomDataset()
        .SetString(DicomTags.CodeValue, DicomVR.SH, value)
        .SetString(DicomTags.CodingSchemeDesignator, DicomVR.SH, scheme)
        .SetString(DicomTags.CodeMeaning, DicomVR.LO, meaning);
}
