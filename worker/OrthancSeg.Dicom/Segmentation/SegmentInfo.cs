namespace OrthancSeg.Dicom.Segmentation;

/// <summary>A coded concept (CodeValue, CodingSchemeDesignator, CodeMeaning), e.g. (10200004, SCT, Liver).</summary>
public sealed record CodedConcept(string Value, string Scheme, string Meaning)
{
    public override string ToString() => $"({Value}, {Scheme}, \"{Meaning}\")";

    /// <summary>
    /// A concept written as a workflow label's code is: "CodeValue^CodingSchemeDesignator^CodeMeaning", e.g.
    /// "10200004^SCT^Liver". Value and scheme are DICOM short strings (at most 16 characters), the meaning at most 64.
    /// </summary>
    public static CodedConcept Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split('^');
        if (parts.Length != 3 || parts.Any(p => p.Trim().Length == 0) || parts[0].Trim().Length > 16 || parts[1].Trim().Length > 16 || parts[2].Trim().Length > 64)
        {
            throw new DicomException($"'{text}' is not a coded concept like 10200004^SCT^Liver (value and scheme up to 16 characters, meaning up to 64)");
        }
        return new CodedConcept(parts[0].Trim(), parts[1].Trim(), parts[2].Trim());
    }

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
