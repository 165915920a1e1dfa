namespace OrthancSeg.Dicom;

/// <summary>
/// Tag → VR for reading Implicit VR Little Endian, where the wire carries no VR. The table is the standard data
/// dictionary (generated, see generate_dictionary.py), so every tag in <see cref="DicomTags"/> and the implicit-VR
/// minimum of formats.md §1.7 are covered, and attributes nobody listed still decode as their real VR.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "PS3.6 calls this table the DICOM data dictionary")]
public static partial class DicomDictionary
{
    /// <summary>The VR of a tag, or <see cref="DicomVR.UN"/> when the dictionary does not know it.</summary>
    public static DicomVR VROf(DicomTag tag) => TryGetVR(tag, out var vr) ? vr : DicomVR.UN;

    public static bool TryGetVR(DicomTag tag, out DicomVR vr)
    {
        var value = tag.Value;
        if (tag.Element == 0x0000)
        {
            // Group lengths are UL in every group (PS3.5 7.2), though only group 0002 still uses them.
            vr = DicomVR.UL;
            return true;
        }
        if (tag.IsPrivate)
        {
            // Private creator elements (gggg,0010-00FF) are LO (PS3.5 7.8.1); private data is unknown.
            vr = tag.Element is >= 0x0010 and <= 0x00FF ? DicomVR.LO : DicomVR.UN;
            return vr != DicomVR.UN;
        }
        if ((tag.Group & 0xFFE1) is 0x5000 or 0x6000)
        {
            // Curve and overlay groups repeat over the even groups 5000-501E / 6000-601E.
            value = ((uint)(tag.Group & 0xFF00) << 16) | tag.Element;
        }
        var index = Tags.BinarySearch(value);
        if (index < 0)
        {
            vr = DicomVR.UN;
            return false;
        }
        vr = (DicomVR)Vrs[index];
        return true;
    }
}
