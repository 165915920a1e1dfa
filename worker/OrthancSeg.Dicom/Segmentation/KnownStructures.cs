namespace OrthancSeg.Dicom.Segmentation;

/// <summary>What a SEG says a segment is: category, type and (for paired organs) laterality, and a display colour.</summary>
public sealed record StructureCoding(CodedConcept Category, CodedConcept Type, CodedConcept? TypeModifier, (byte R, byte G, byte B) Colour);

/// <summary>
/// Default codes and colours for the structures segmentation models are most often trained on, looked up by segment name
/// ("liver", "Kidney_L", "left kidney", "tumour"), so a workflow that names its labels plainly gets SEGs that PACS and
/// viewers can classify without configuring codes. Codes are SNOMED CT (SCT) from DICOM PS3.16: categories from CID 7150
/// "Segmentation Property Category", types from CID 7151 "Segmentation Property Type", laterality modifiers from CID 244;
/// SegValidatorsTests checks every entry against pydicom's copy of the PS3.16 concept dictionary. Colours are those of
/// 3D Slicer's GenericAnatomyColors table, so a SEG looks in OHIF as it does in Slicer.
/// </summary>
public static class KnownStructures
{
    public static readonly CodedConcept AnatomicalStructure = new("123037004", "SCT", "Anatomical Structure");
    public static readonly CodedConcept MorphologicallyAbnormalStructure = new("49755003", "SCT", "Morphologically Abnormal Structure");
    public static readonly CodedConcept Tissue = new("85756007", "SCT", "Tissue");
    public static readonly CodedConcept Left = new("7771000", "SCT", "Left");
    public static readonly CodedConcept Right = new("24028007", "SCT", "Right");

    private static readonly Dictionary<string, (CodedConcept Category, CodedConcept Type, (byte, byte, byte) Colour)> Table = Build();

    private static Dictionary<string, (CodedConcept, CodedConcept, (byte, byte, byte))> Build()
    {
        var table = new Dictionary<string, (CodedConcept, CodedConcept, (byte, byte, byte))>(StringComparer.Ordinal);
        void Add(CodedConcept category, string code, string meaning, (byte, byte, byte) colour, params string[] names)
        {
            var type = new CodedConcept(code, "SCT", meaning);
            foreach (var name in names.Append(meaning.ToLowerInvariant()))
            {
                table[name] = (category, type, colour);
            }
        }
        var anatomy = AnatomicalStructure;
        Add(anatomy, "10200004", "Liver", (221, 130, 101), "hepar");
        Add(anatomy, "78961009", "Spleen", (157, 108, 162));
        Add(anatomy, "64033007", "Kidney", (185, 102, 83), "kidneys");
        Add(anatomy, "15776009", "Pancreas", (249, 180, 111));
        Add(anatomy, "39607008", "Lung", (197, 165, 145), "lungs");
        Add(anatomy, "80891009", "Heart", (206, 110, 84));
        Add(anatomy, "15825003", "Aorta", (224, 97, 76));
        Add(anatomy, "89837001", "Bladder", (222, 198, 101), "urinary bladder");
        Add(anatomy, "41216001", "Prostate", (230, 158, 140));
        Add(anatomy, "12738006", "Brain", (250, 250, 225));
        Add(anatomy, "28231008", "Gallbladder", (139, 150, 98), "gall bladder");
        Add(anatomy, "69695003", "Stomach", (216, 132, 105));
        Add(anatomy, "32849002", "Esophagus", (211, 171, 143), "oesophagus");
        Add(MorphologicallyAbnormalStructure, "108369006", "Neoplasm", (144, 238, 144), "tumor", "tumour", "mass");
        return table;
    }

    /// <summary>Every name the table knows, without laterality (e.g. "liver", "tumour").</summary>
    public static IEnumerable<string> Names => Table.Keys;

    /// <summary>The table's entry for a type code (its category and colour), or null for a code not in the table.</summary>
    public static StructureCoding? FindByType(CodedConcept type)
    {
        ArgumentNullException.ThrowIfNull(type);
        foreach (var (category, known, colour) in Table.Values)
        {
            if (known.Value == type.Value && string.Equals(known.Scheme, type.Scheme, StringComparison.OrdinalIgnoreCase))
            {
                return new StructureCoding(category, known, null, colour);
            }
        }
        return null;
    }

    /// <summary>
    /// The coding of a segment name, or null for a name not in the table. Case, spaces, dashes and underscores do not
    /// matter; "left"/"right" (or a lone "l"/"r") anywhere in the name become the laterality modifier.
    /// </summary>
    public static StructureCoding? Find(string segmentName)
    {
        ArgumentNullException.ThrowIfNull(segmentName);
        var words = segmentName.ToLowerInvariant()
            .Split([' ', '_', '-', '.', ','], StringSplitOptions.RemoveEmptyEntries)
            .ToList();
        CodedConcept? side = null;
        foreach (var (names, concept) in new[] { (new[] { "left", "l" }, Left), (["right", "r"], Right) })
        {
            if (words.RemoveAll(w => names.Contains(w)) > 0)
            {
                if (side is not null)
                {
                    return null; // "left and right ..." is not one side.
                }
                side = concept;
            }
        }
        return words.Count > 0 && Table.TryGetValue(string.Join(' ', words), out var entry)
            ? new StructureCoding(entry.Category, entry.Type, side, entry.Colour)
            : null;
    }
}
