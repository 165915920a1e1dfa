namespace OrthancSeg.Dicom.Nifti;

/// <summary>The NIfTI-1 datatype codes (nifti1.h DT_*) the reader accepts; values are the on-disk codes.</summary>
#pragma warning disable CA1028 // The on-disk field is an int16; the enum mirrors it.
public enum NiftiDataType : short
#pragma warning restore CA1028
{
    UInt8 = 2,
    Int16 = 4,
    Int32 = 8,
    Float32 = 16,
    Float64 = 64,
    Int8 = 256,
    UInt16 = 512,
    UInt32 = 768,
}
