namespace OrthancSeg.Dicom.Segmentation;

/// <summary>
/// A colour as DICOM stores it in RecommendedDisplayCIELabValue: L scaled 0..100 → 0..65535, a and b scaled
/// −128..127 → 0..65535 (PS3.3 C.10.7.1.1), which OHIF uses to colour segments.
/// </summary>
public readonly record struct CieLabColour(ushort L, ushort A, ushort B)
{
    /// <summary>A colour written as a workflow label's colour is: "#rrggbb".</summary>
    public static CieLabColour FromHex(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length != 7 || text[0] != '#' || !uint.TryParse(text.AsSpan(1), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var rgb))
        {
            throw new DicomException($"'{text}' is not a colour like #dd8265");
        }
        return FromRgb((byte)(rgb >> 16), (byte)(rgb >> 8), (byte)rgb);
    }

    /// <summary>
    /// sRGB (0–255) → CIE XYZ → CIELab (D65) → DICOM scaling, with the constants of dcmjs' rgb2DICOMLAB, which OHIF
    /// uses both ways: the same colour then comes back from OHIF's dicomlab2RGB.
    /// </summary>
    public static CieLabColour FromRgb(byte red, byte green, byte blue)
    {
        static double Linear(byte c)
        {
            var v = c / 255.0;
            return v <= 0.0404482362771076 ? v / 12.92 : Math.Pow((v + 0.055) / 1.055, 2.4);
        }
        var (r, g, b) = (Linear(red), Linear(green), Linear(blue));
        var x = ((0.4123955889674142161 * r) + (0.3575834307637148171 * g) + (0.1804926473817015735 * b)) / 0.950456;
        var y = (0.2125862307855955516 * r) + (0.7151703037034108499 * g) + (0.07220049864333622685 * b);
        var z = ((0.01929721549174694484 * r) + (0.1191838645808485318 * g) + (0.950497125131579766 * b)) / 1.088754;
        static double F(double t) => t >= 8.85645167903563082e-3 ? Math.Pow(t, 0.333333333333333) : (841.0 / 108.0 * t) + (4.0 / 29.0);
        var (fx, fy, fz) = (F(x), F(y), F(z));
        var l = (116 * fy) - 16;
        var a = 500 * (fx - fy);
        var bb = 200 * (fy - fz);
        static ushort Scale(double v, double offset, double range) => (ushort)Math.Clamp(Math.Round((v + offset) * 65535 / range, MidpointRounding.AwayFromZero), 0, 65535);
        return new CieLabColour(Scale(l, 0, 100), Scale(a, 128, 255), Scale(bb, 128, 255));
    }
}

/// <summary>How a label value of a label map is described as a SEG segment.</summary>
/// <param name="Value">The label value (1–255) in the label map.</param>
/// <param name="Label">SegmentLabel: the name readers map back to a class.</param>
/// <param name="Category">
/// SegmentedPropertyCategoryCode. When not given: the category of <paramref name="Type"/> if <see cref="KnownStructures"/>
/// knows that code, else of <paramref name="Label"/> if it names a known structure, else "Tissue" (85756007, SCT).
/// </param>
/// <param name="Type">
/// SegmentedPropertyTypeCode. When not given: the code of the structure <paramref name="Label"/> names ("liver" → 10200004
/// SCT "Liver", with its laterality for "kidney left"), else "Tissue" (85756007, SCT).
/// </param>
/// <param name="Colour">
/// RecommendedDisplayCIELabValue. When not given: the known structure's colour, else a fixed palette colour by label value.
/// </param>
/// <param name="TypeModifier">SegmentedPropertyTypeModifierCode, e.g. (7771000, SCT, "Left"); from the label when not given.</param>
public sealed record SegmentDefinition(
    byte Value,
    string Label,
    CodedConcept? Category = null,
    CodedConcept? Type = null,
    CieLabColour? Colour = null,
    string? Description = null,
    CodedConcept? TypeModifier = null);

public enum SegmentAlgorithmType
{
    Manual,
    SemiAutomatic,
    Automatic,
}

/// <summary>Series-level choices for a SEG written from a label map.</summary>
/// <param name="AlgorithmName">
/// Required for AUTOMATIC and SEMIAUTOMATIC (e.g. the model id): SegmentAlgorithmName and the AlgorithmName of each
/// segment's SegmentationAlgorithmIdentificationSequence; optional for MANUAL.
/// </param>
/// <param name="SeriesDescription">
/// What the PACS and OHIF list the SEG as (at most 64 characters). When not given: "Segmentation by &lt;AlgorithmName&gt;"
/// for AUTOMATIC and SEMIAUTOMATIC, so the study browser says which model made it, else "Segmentation".
/// </param>
/// <param name="ContentCreatorName">ContentCreatorName (PN, Type 2): the person who made or checked it; empty when not given.</param>
/// <param name="ContentLabel">ContentLabel: a DICOM code string, at most 16 of A–Z, 0–9, space and underscore.</param>
/// <param name="AlgorithmVersion">AlgorithmVersion, e.g. "3d_fullres folds 0-4 nnUNetTrainer"; "unspecified" when not given.</param>
/// <param name="AlgorithmFamily">AlgorithmFamilyCodeSequence; "Artificial Intelligence" (123110, DCM) when not given.</param>
/// <param name="AlgorithmParameters">AlgorithmParameters (LT), optional: how the algorithm was run.</param>
public sealed record SegmentationWriterOptions(
    SegmentAlgorithmType AlgorithmType = SegmentAlgorithmType.Automatic,
    string? AlgorithmName = null,
    string? SeriesDescription = null,
    int SeriesNumber = 300,
    string? ContentCreatorName = null,
    string ContentLabel = "ORTHANCSEG",
    string? ContentDescription = null,
    string? AlgorithmVersion = null,
    CodedConcept? AlgorithmFamily = null,
    string? AlgorithmParameters = null);

/// <summary>One segment as written: its SegmentNumber in the SEG and where it came from.</summary>
public sealed record WrittenSegment(int Number, byte Value, string Label, long VoxelCount, int FrameCount);

/// <summary>
/// The outcome of writing a SEG: the data set, or — for a label map without any labelled voxel — no data set
/// and the reason, because an empty SEG is not a valid SEG (no reader can build one) and "the model found
/// nothing" is a normal result, not a failure.
/// </summary>
public sealed record SegmentationWriteResult(DicomDataset? Segmentation, IReadOnlyList<WrittenSegment> Segments, string? NotWrittenReason)
{
    public bool Written => Segmentation is not null;
}
