namespace OrthancSeg.Dicom;

/// <summary>
/// One attribute of a data set. Exactly one of the three payloads is used: <see cref="Value"/> for plain
/// values (little-endian bytes as stored, padding included; a slice of the file buffer when read, so pixel
/// data is not copied), <see cref="Items"/> for sequences, <see cref="Fragments"/> for encapsulated pixel
/// data (the first fragment is the Basic Offset Table, possibly empty).
/// </summary>
public sealed class DicomElement
{
    private static readonly IReadOnlyList<DicomDataset> NoItems = [];

    public DicomElement(DicomTag tag, DicomVR vr, ReadOnlyMemory<byte> value)
    {
        Tag = tag;
        VR = vr;
        Value = value;
    }

    private DicomElement(DicomTag tag, DicomVR vr, IReadOnlyList<DicomDataset>? items, IReadOnlyList<ReadOnlyMemory<byte>>? fragments)
    {
        Tag = tag;
        VR = vr;
        Items = items;
        Fragments = fragments;
    }

    public static DicomElement Sequence(DicomTag tag, IReadOnlyList<DicomDataset> items) => new(tag, DicomVR.SQ, items, null);

    public static DicomElement Encapsulated(DicomTag tag, DicomVR vr, IReadOnlyList<ReadOnlyMemory<byte>> fragments) => new(tag, vr, null, fragments);

    public DicomTag Tag { get; }

    public DicomVR VR { get; }

    public ReadOnlyMemory<byte> Value { get; }

    /// <summary>The items of a sequence; null for other elements.</summary>
    public IReadOnlyList<DicomDataset>? Items { get; }

    /// <summary>The fragments of encapsulated pixel data, Basic Offset Table first; null otherwise.</summary>
    public IReadOnlyList<ReadOnlyMemory<byte>>? Fragments { get; }

    public bool IsSequence => Items is not null;

    public bool IsEncapsulated => Fragments is not null;

    public IReadOnlyList<DicomDataset> ItemsOrEmpty => Items ?? NoItems;

    public override string ToString() => $"{Tag} {VR} {(IsSequence ? $"{Items!.Count} items" : IsEncapsulated ? $"{Fragments!.Count} fragments" : $"{Value.Length} bytes")}";
}
