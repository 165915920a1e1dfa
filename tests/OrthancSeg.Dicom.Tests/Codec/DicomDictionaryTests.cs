using System.Reflection;

namespace OrthancSeg.Dicom.Tests.Codec;

public sealed class DicomDictionaryTests
{
    [Fact]
    public void Every_attribute_the_worker_names_has_a_vr()
    {
        var missing = typeof(DicomTags).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.FieldType == typeof(DicomTag))
            .Select(f => (Name: f.Name, Tag: (DicomTag)f.GetValue(null)!))
            .Where(t => t.Tag.Group != 0xFFFE && !DicomDictionary.TryGetVR(t.Tag, out _))
            .Select(t => $"{t.Name} {t.Tag}")
            .ToList();

        Assert.Empty(missing);
    }

    /// <summary>The implicit-VR minimum of formats.md §1.7: sequences and binary numbers must not be misread.</summary>
    [Theory]
    [InlineData(0x0008, 0x1115, DicomVR.SQ)]
    [InlineData(0x0008, 0x114A, DicomVR.SQ)]
    [InlineData(0x0008, 0x2112, DicomVR.SQ)]
    [InlineData(0x0008, 0x9124, DicomVR.SQ)]
    [InlineData(0x0008, 0x9215, DicomVR.SQ)]
    [InlineData(0x0008, 0x1160, DicomVR.IS)]
    [InlineData(0x0020, 0x9111, DicomVR.SQ)]
    [InlineData(0x0020, 0x9113, DicomVR.SQ)]
    [InlineData(0x0020, 0x9116, DicomVR.SQ)]
    [InlineData(0x0020, 0x9157, DicomVR.UL)]
    [InlineData(0x0020, 0x9165, DicomVR.AT)]
    [InlineData(0x0020, 0x9167, DicomVR.AT)]
    [InlineData(0x0020, 0x9221, DicomVR.SQ)]
    [InlineData(0x0020, 0x9222, DicomVR.SQ)]
    [InlineData(0x0020, 0x0032, DicomVR.DS)]
    [InlineData(0x0028, 0x0002, DicomVR.US)]
    [InlineData(0x0028, 0x0006, DicomVR.US)]
    [InlineData(0x0028, 0x0008, DicomVR.IS)]
    [InlineData(0x0028, 0x0010, DicomVR.US)]
    [InlineData(0x0028, 0x0103, DicomVR.US)]
    [InlineData(0x0028, 0x135A, DicomVR.CS)]
    [InlineData(0x0028, 0x9110, DicomVR.SQ)]
    [InlineData(0x0028, 0x9145, DicomVR.SQ)]
    [InlineData(0x0040, 0xA170, DicomVR.SQ)]
    [InlineData(0x0062, 0x0002, DicomVR.SQ)]
    [InlineData(0x0062, 0x0004, DicomVR.US)]
    [InlineData(0x0062, 0x0006, DicomVR.ST)]
    [InlineData(0x0062, 0x0007, DicomVR.SQ)]
    [InlineData(0x0062, 0x000B, DicomVR.US)]
    [InlineData(0x0062, 0x000D, DicomVR.US)]
    [InlineData(0x0062, 0x0011, DicomVR.SQ)]
    [InlineData(0x0062, 0x0020, DicomVR.UT)]
    [InlineData(0x0070, 0x0084, DicomVR.PN)]
    [InlineData(0x5200, 0x9229, DicomVR.SQ)]
    [InlineData(0x5200, 0x9230, DicomVR.SQ)]
    [InlineData(0x7FE0, 0x0010, DicomVR.OW)]
    public void Implicit_vr_minimum_dictionary_entry_has_its_standard_vr(int group, int element, DicomVR vr)
    {
        Assert.Equal(vr, DicomDictionary.VROf(new DicomTag((ushort)group, (ushort)element)));
    }

    [Theory]
    [InlineData(0x0009, 0x0010, DicomVR.LO)]
    [InlineData(0x0029, 0x10FF, DicomVR.UN)]
    [InlineData(0x0018, 0x0000, DicomVR.UL)]
    [InlineData(0x6002, 0x3000, DicomVR.OW)]
    [InlineData(0x601E, 0x0010, DicomVR.US)]
    [InlineData(0x0008, 0x0002, DicomVR.UN)]
    public void Private_group_length_repeating_and_unknown_tags_get_their_rule_vr(int group, int element, DicomVR vr)
    {
        Assert.Equal(vr, DicomDictionary.VROf(new DicomTag((ushort)group, (ushort)element)));
    }
}
