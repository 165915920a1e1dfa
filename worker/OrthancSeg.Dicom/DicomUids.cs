namespace OrthancSeg.Dicom;

/// <summary>Transfer syntaxes the codec knows by name.</summary>
public static class TransferSyntaxes
{
    public const string ImplicitVRLittleEndian = "1.2.840.10008.1.2";
    public const string ExplicitVRLittleEndian = "1.2.840.10008.1.2.1";
    public const string DeflatedExplicitVRLittleEndian = "1.2.840.10008.1.2.1.99";
    public const string ExplicitVRBigEndian = "1.2.840.10008.1.2.2";
    public const string RleLossless = "1.2.840.10008.1.2.5";
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
