namespace OrthancSeg.Dicom;

/// <summary>Value representations. The numeric value is the two ASCII characters as they appear on the wire.</summary>
public enum DicomVR : ushort
{
    None = 0,
    AE = ('A' << 8) | 'E', AS = ('A' << 8) | 'S', AT = ('A' << 8) | 'T', CS = ('C' << 8) | 'S',
    DA = ('D' << 8) | 'A', DS = ('D' << 8) | 'S', DT = ('D' << 8) | 'T', FD = ('F' << 8) | 'D',
    FL = ('F' << 8) | 'L', IS = ('I' << 8) | 'S', LO = ('L' << 8) | 'O', LT = ('L' << 8) | 'T',
    OB = ('O' << 8) | 'B', OD = ('O' << 8) | 'D', OF = ('O' << 8) | 'F', OL = ('O' << 8) | 'L',
    OV = ('O' << 8) | 'V', OW = ('O' << 8) | 'W', PN = ('P' << 8) | 'N', SH = ('S' << 8) | 'H',
    SL = ('S' << 8) | 'L', SQ = ('S' << 8) | 'Q', SS = ('S' << 8) | 'S', ST = ('S' << 8) | 'T',
    SV = ('S' << 8) | 'V', TM = ('T' << 8) | 'M', UC = ('U' << 8) | 'C', UI = ('U' << 8) | 'I',
    UL = ('U' << 8) | 'L', UN = ('U' << 8) | 'N', UR = ('U' << 8) | 'R', US = ('U' << 8) | 'S',
    UT = ('U' << 8) | 'T', UV = ('U' << 8) | 'V',
}

public static class DicomVRInfo
{
    /// <summary>True for the VRs whose explicit-VR header carries a 2-byte length (PS3.5 Table 7.1-2).</summary>
    public static bool HasShortLength(DicomVR vr) => vr is DicomVR.AE or DicomVR.AS or DicomVR.AT or DicomVR.CS
        or DicomVR.DA or DicomVR.DS or DicomVR.DT or DicomVR.FL or DicomVR.FD or DicomVR.IS or DicomVR.LO
        or DicomVR.LT or DicomVR.PN or DicomVR.SH or DicomVR.SL or DicomVR.SS or DicomVR.ST or DicomVR.TM
        or DicomVR.UI or DicomVR.UL or DicomVR.US;

    /// <summary>True for VRs holding text (padded with spaces, multiple values separated by backslash).</summary>
    public static bool IsText(DicomVR vr) => vr is DicomVR.AE or DicomVR.AS or DicomVR.CS or DicomVR.DA
        or DicomVR.DS or DicomVR.DT or DicomVR.IS or DicomVR.LO or DicomVR.LT or DicomVR.PN or DicomVR.SH
        or DicomVR.ST or DicomVR.TM or DicomVR.UC or DicomVR.UI or DicomVR.UR or DicomVR.UT;

    /// <summary>The byte used to pad a value to even length.</summary>
    public static byte PaddingByte(DicomVR vr) => vr == DicomVR.UI || !IsText(vr) ? (byte)0 : (byte)' ';

    public static bool TryParse(byte first, byte second, out DicomVR vr)
    {
        vr = (DicomVR)((first << 8) | second);
        return Enum.IsDefined(vr) && vr != DicomVR.None;
    }
}
