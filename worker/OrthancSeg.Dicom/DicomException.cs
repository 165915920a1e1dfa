namespace OrthancSeg.Dicom;

/// <summary>
/// The one exception type the DICOM core throws for input it cannot or will not handle: malformed or
/// truncated files, unsupported transfer syntaxes, series that cannot be one volume, SEGs that do not fit
/// their series. The message names the problem in words a person can act on.
/// </summary>
public sealed class DicomException : Exception
{
    public DicomException(string message) : base(message) { }

    public DicomException(string message, Exception innerException) : base(message, innerException) { }

    public DicomException() : base("Invalid DICOM input") { }
}
