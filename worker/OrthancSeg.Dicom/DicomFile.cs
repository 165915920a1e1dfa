namespace OrthancSeg.Dicom;

/// <summary>A Part 10 file: its file meta information (group 0002) and its data set.</summary>
public sealed class DicomFile
{
    private readonly string? _transferSyntaxUid;

    public DicomFile(DicomDataset meta, DicomDataset dataset)
    {
        Meta = meta;
        Dataset = dataset;
    }

    /// <summary>
    /// A file whose data set was encoded with <paramref name="transferSyntaxUid"/>, which the reader found out even
    /// where the meta is missing or wrong about it (files without meta, implicit data sets declared explicit).
    /// </summary>
    public DicomFile(DicomDataset meta, DicomDataset dataset, string transferSyntaxUid)
        : this(meta, dataset)
    {
        _transferSyntaxUid = transferSyntaxUid;
    }

    public DicomDataset Meta { get; }

    public DicomDataset Dataset { get; }

    /// <summary>The transfer syntax the data set was encoded with (Implicit VR Little Endian when the meta says nothing).</summary>
    public string TransferSyntaxUid => _transferSyntaxUid ?? Meta.GetString(DicomTags.TransferSyntaxUID) ?? TransferSyntaxes.ImplicitVRLittleEndian;

    /// <summary>A file for <paramref name="dataset"/> with the file meta <see cref="DicomWriter"/> writes.</summary>
    public static DicomFile Create(DicomDataset dataset) => DicomWriter.CreateFile(dataset);
}
