namespace OrthancSeg.Dicom.Segmentation;

/// <summary>A coded concept (CodeValue, CodingSchemeDesignator, CodeMeaning), e.g. (10200004, SCT, Liver).</summary>
public sealed record CodedConcept(string Value, string Scheme, string Meaning)
{
    public override string ToString() => $"({Value}, {Scheme}, \"{Meaning}\")";

    internal static CodedConcept? From(DicomDataset? item)
    {
        if (item is null)
        {
            return null;
        }
        var value = item.GetString(DicomTags.CodeValue);
        var scheme = item.GetString(DicomTags.CodingSchemeDesignator);
        return value is null || scheme is null ? null : new CodedConcept(value, scheme, item.GetString(DicomTags.CodeMeaning) ?? "");
    }

    internal DicomDataset ToItem() => new DicomDataset()
        .SetString(DicomTags.CodeValue, DicomVR.SH, Value)
        .SetString(DicomTags.CodingSchemeDesignator, DicomVR.SH, Scheme)
        .SetString(DicomTags.CodeMeaning, DicomVR.LO, Meaning);
}

/// <summary>One item of a SEG's SegmentSequence, as the SEG describes it.</summary>
/// <param name="Number">SegmentNumber: an id within this SEG only, never a class.</param>
/// <param name="AlgorithmType">MANUAL, SEMIAUTOMATIC or AUTOMATIC.</param>
public sealed record SegmentInfo(
    int Number,
    string Label,
    string? Description,
    CodedConcept? Category,
    CodedConcept? Type,
    string? AlgorithmType,
    string? AlgorithmName)
{
    public override string ToString() => $"segment {Number} '{Label}'{(Type is null ? "" : $" type {Type}")}";

    internal static SegmentInfo From(DicomDataset item)
    {
        var number = item.GetInt(DicomTags.SegmentNumber) ?? throw new DicomException("A SegmentSequence item has no SegmentNumber");
        return new SegmentInfo(number,
            item.GetText(DicomTags.SegmentLabel) ?? "",
            item.GetText(DicomTags.SegmentDescription),
            CodedConcept.From(item.GetFirstItem(DicomTags.SegmentedPropertyCategoryCodeSequence)),
            CodedConcept.From(item.GetFirstItem(DicomTags.SegmentedPropertyTypeCodeSequence)),
            item.GetString(DicomTags.SegmentAlgorithmType),
            item.GetText(DicomTags.SegmentAlgorithmName));
    }
}
