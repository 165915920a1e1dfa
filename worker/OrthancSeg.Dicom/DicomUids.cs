using System.Collections.Frozen;

namespace OrthancSeg.Dicom;

/// <summary>Transfer syntaxes the codec knows by name.</summary>
public static class TransferSyntaxes
{
    public const string ImplicitVRLittleEndian = "1.2.840.10008.1.2";
    public const string ExplicitVRLittleEndian = "1.2.840.10008.1.2.1";
    public const string DeflatedExplicitVRLittleEndian = "1.2.840.10008.1.2.1.99";
    public const string ExplicitVRBigEndian = "1.2.840.10008.1.2.2";
    public const string RleLossless = "1.2.840.10008.1.2.5";
    public const string JpegBaseline8Bit = "1.2.840.10008.1.2.4.50";
    public const string JpegLosslessSV1 = "1.2.840.10008.1.2.4.70";
    public const string JpegLsLossless = "1.2.840.10008.1.2.4.80";
    public const string Jpeg2000Lossless = "1.2.840.10008.1.2.4.90";
    public const string Jpeg2000 = "1.2.840.10008.1.2.4.91";

    private static readonly FrozenDictionary<string, string> Names = new Dictionary<string, string>
    {
        [ImplicitVRLittleEndian] = "Implicit VR Little Endian",
        [ExplicitVRLittleEndian] = "Explicit VR Little Endian",
        ["1.2.840.10008.1.2.1.98"] = "Encapsulated Uncompressed Explicit VR Little Endian",
        [DeflatedExplicitVRLittleEndian] = "Deflated Explicit VR Little Endian",
        [ExplicitVRBigEndian] = "Explicit VR Big Endian",
        [JpegBaseline8Bit] = "JPEG Baseline (Process 1)",
        ["1.2.840.10008.1.2.4.51"] = "JPEG Extended (Process 2 & 4)",
        ["1.2.840.10008.1.2.4.57"] = "JPEG Lossless, Non-Hierarchical (Process 14)",
        [JpegLosslessSV1] = "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14, Selection Value 1)",
        [JpegLsLossless] = "JPEG-LS Lossless",
        ["1.2.840.10008.1.2.4.81"] = "JPEG-LS Near-Lossless",
        [Jpeg2000Lossless] = "JPEG 2000 (Lossless Only)",
        [Jpeg2000] = "JPEG 2000",
        ["1.2.840.10008.1.2.4.92"] = "JPEG 2000 Part 2 Multi-component (Lossless Only)",
        ["1.2.840.10008.1.2.4.93"] = "JPEG 2000 Part 2 Multi-component",
        ["1.2.840.10008.1.2.4.100"] = "MPEG2 Main Profile / Main Level",
        ["1.2.840.10008.1.2.4.101"] = "MPEG2 Main Profile / High Level",
        ["1.2.840.10008.1.2.4.102"] = "MPEG-4 AVC/H.264 High Profile / Level 4.1",
        ["1.2.840.10008.1.2.4.103"] = "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1",
        ["1.2.840.10008.1.2.4.107"] = "HEVC/H.265 Main Profile / Level 5.1",
        ["1.2.840.10008.1.2.4.108"] = "HEVC/H.265 Main 10 Profile / Level 5.1",
        ["1.2.840.10008.1.2.4.201"] = "High-Throughput JPEG 2000 (Lossless Only)",
        ["1.2.840.10008.1.2.4.202"] = "High-Throughput JPEG 2000 with RPCL Options (Lossless Only)",
        ["1.2.840.10008.1.2.4.203"] = "High-Throughput JPEG 2000",
        [RleLossless] = "RLE Lossless",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>The standard name of a transfer syntax for messages, or "unknown transfer syntax".</summary>
    public static string NameOf(string uid) => Names.TryGetValue(uid, out var name) ? name : "unknown transfer syntax";

    /// <summary>True for the syntaxes whose pixel data is stored native (not encapsulated).</summary>
    public static bool IsNative(string uid) =>
        uid is ImplicitVRLittleEndian or ExplicitVRLittleEndian or DeflatedExplicitVRLittleEndian or ExplicitVRBigEndian;
}

/// <summary>SOP classes the worker treats specially.</summary>
public static class SopClasses
{
    public const string Segmentation = "1.2.840.10008.5.1.4.1.1.66.4";
    public const string LabelMapSegmentation = "1.2.840.10008.5.1.4.1.1.66.7";
    public const string CTImage = "1.2.840.10008.5.1.4.1.1.2";
    public const string EnhancedCTImage = "1.2.840.10008.5.1.4.1.1.2.1";
    public const string MRImage = "1.2.840.10008.5.1.4.1.1.4";
    public const string EnhancedMRImage = "1.2.840.10008.5.1.4.1.1.4.1";

    public static bool IsSegmentation(string? sopClassUid) => sopClassUid is Segmentation or LabelMapSegmentation;
}

/// <summary>This implementation's identity in the files it writes.</summary>
public static class Implementation
{
    /// <summary>UUID-derived root (2.25) so that no registered organisation root is claimed.</summary>
    public const string ClassUid = "2.25.177032128335592358412633262430574133553";
    public const string VersionName = "ORTHANCSEG_1";

    /// <summary>A new globally unique UID under 2.25 (a UUID as a decimal integer, PS3.5 B.2).</summary>
    public static string NewUid()
    {
        Span<byte> bytes = stackalloc byte[16];
        Guid.NewGuid().TryWriteBytes(bytes, bigEndian: true, out _);
        var value = new System.Numerics.BigInteger(bytes, isUnsigned: true, isBigEndian: true);
        return "2.25." + value.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}
