namespace OrthancSeg.Dicom.Tests.Codec;

internal static class DatasetAssert
{
    /// <summary>
    /// Asserts two data sets hold the same elements, VRs, values and items. Group lengths (gggg,0000) are ignored
    /// because the writer drops them on purpose, and odd values are compared as the even values the writer pads
    /// them to.
    /// </summary>
    public static void Equal(DicomDataset expected, DicomDataset actual, string path = "")
    {
        var expectedElements = expected.Where(e => e.Tag.Element != 0x0000).ToList();
        var actualElements = actual.Where(e => e.Tag.Element != 0x0000).ToList();
        Assert.True(
            expectedElements.Select(e => e.Tag).SequenceEqual(actualElements.Select(e => e.Tag)),
            $"{path}: tags differ: expected [{string.Join(' ', expectedElements.Select(e => e.Tag))}] got [{string.Join(' ', actualElements.Select(e => e.Tag))}]");
        for (var i = 0; i < expectedElements.Count; i++)
        {
            var e = expectedElements[i];
            var a = actualElements[i];
            var where = $"{path}/{e.Tag}";
            Assert.True(e.VR == a.VR, $"{where}: VR {a.VR}, expected {e.VR}");
            Assert.True(e.IsSequence == a.IsSequence, $"{where}: sequence {a.IsSequence}, expected {e.IsSequence}");
            if (e.IsSequence)
            {
                Assert.True(e.Items!.Count == a.Items!.Count, $"{where}: {a.Items.Count} items, expected {e.Items.Count}");
                for (var item = 0; item < e.Items.Count; item++)
                {
                    Equal(e.Items[item], a.Items[item], $"{where}[{item}]");
                }
                continue;
            }
            Assert.True(Padded(e).SequenceEqual(Padded(a)), $"{where}: value of {a.Value.Length} bytes differs from the expected {e.Value.Length} bytes");
        }
    }

    private static byte[] Padded(DicomElement element)
    {
        var value = element.Value.ToArray();
        return value.Length % 2 == 0 ? value : [.. value, DicomVRInfo.PaddingByte(element.VR)];
    }
}
