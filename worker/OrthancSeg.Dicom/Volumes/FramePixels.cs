namespace OrthancSeg.Dicom.Volumes;

/// <summary>
/// The one place that turns PixelData into frame bytes for the volume and SEG code. Native (uncompressed
/// little-endian) pixel data is sliced in place without copying; encapsulated pixel data goes through the codec.
/// </summary>
internal static class FramePixels
{
    /// <summary>The whole native PixelData value, or null when the pixel data is encapsulated (compressed).</summary>
    public static ReadOnlyMemory<byte>? NativeBytes(DicomDataset dataset, string transferSyntaxUid, string what)
    {
        var element = PixelDataElement(dataset, transferSyntaxUid, what);
        return element.IsEncapsulated ? null : element.Value;
    }

    /// <summary>
    /// Frame <paramref name="frame"/> as native little-endian bytes of <paramref name="frameBytes"/> bytes
    /// (BitsAllocated ≥ 8; 1-bit data is unpacked by its callers because SEG writers disagree on its layout).
    /// </summary>
    public static ReadOnlyMemory<byte> Frame(DicomDataset dataset, string transferSyntaxUid, int frame, int frameBytes, string what)
    {
        var element = PixelDataElement(dataset, transferSyntaxUid, what);
        if (element.IsEncapsulated)
        {
            throw new DicomException($"{what} has compressed pixel data (transfer syntax {transferSyntaxUid}); have Orthanc transcode it to Explicit VR Little Endian first");
        }
        var offset = (long)frame * frameBytes;
        if (offset + frameBytes > element.Value.Length)
        {
            throw new DicomException($"{what}: PixelData holds {element.Value.Length} bytes, too few for frame {frame + 1} of {frameBytes} bytes");
        }
        return element.Value.Slice((int)offset, frameBytes);
    }

    private static DicomElement PixelDataElement(DicomDataset dataset, string transferSyntaxUid, string what)
    {
        if (transferSyntaxUid == TransferSyntaxes.ExplicitVRBigEndian)
        {
            throw new DicomException($"{what} is Explicit VR Big Endian, a retired transfer syntax that is not supported");
        }
        if (!dataset.TryGet(DicomTags.PixelData, out var element) || (!element.IsEncapsulated && element.Value.IsEmpty))
        {
            throw new DicomException($"{what} has no PixelData");
        }
        return element;
    }
}
