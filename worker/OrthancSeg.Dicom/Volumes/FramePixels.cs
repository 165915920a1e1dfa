namespace OrthancSeg.Dicom.Volumes;

/// <summary>
/// The one place the volume and SEG code get frame bytes from: the codec's <see cref="DicomPixelData"/>
/// (native data sliced in place, RLE decoded), with failures re-worded to name the instance concerned.
/// </summary>
internal static class FramePixels
{
    public static DicomPixelData Open(DicomDataset dataset, string transferSyntaxUid, string what)
    {
        try
        {
            return DicomPixelData.Create(dataset, transferSyntaxUid);
        }
        catch (DicomException e)
        {
            throw new DicomException($"{what}: {e.Message}", e);
        }
    }

    /// <summary>Frame <paramref name="frame"/> as native little-endian bytes (BitsAllocated ≥ 8).</summary>
    public static ReadOnlyMemory<byte> Frame(DicomDataset dataset, string transferSyntaxUid, int frame, string what)
    {
        var pixels = Open(dataset, transferSyntaxUid, what);
        try
        {
            return pixels.GetFrame(frame);
        }
        catch (DicomException e)
        {
            throw new DicomException($"{what}: {e.Message}", e);
        }
    }
}
