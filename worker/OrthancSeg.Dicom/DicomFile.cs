namespace OrthancSeg.Dicom;

/// <summary>A Part 10 file: its file meta information (group 0002) and its data set.</summary>
public sealed class DicomFile
{
    public DicomFile(DicomDataset meta, DicomDataset dataset)
    {
        Meta = meta;
        Dataset = dataset;
    }

    public DicomDataset Meta { get; }

    public DicomDataset Dataset { get; }

    /// <summary>The transfer syntax the data set was encoded with (Implicit VR Little Endian when the meta says nothing).</summary>
    public string TransferSyntaxUid => Meta.GetString(DicomTags.TransferSyntaxUID) ?? TransferSyntaxes.ImplicitVRLittleEndian;
}
