using OrthancSeg.Dicom.Nifti;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Worker.Datasets;

/// <summary>
/// How a case's volumes are written for nnU-Net, by the dataset export (imagesTr/, labelsTr/) and by inference (the predictor's input
/// folder) alike: the names nnU-Net expects and gzipped NIfTI flushed to disk, hashed as it is written.
/// </summary>
internal static class NiftiCaseFiles
{
    /// <summary>CASE_0000.nii.gz: the case's one channel, as nnU-Net names image files.</summary>
    public static string ImageFileName(string caseKey) => $"{caseKey}_0000.nii.gz";

    /// <summary>CASE.nii.gz: a label map (in labelsTr/), or the prediction nnU-Net writes for the case.</summary>
    public static string LabelFileName(string caseKey) => $"{caseKey}.nii.gz";

    public static (string Sha256, long Bytes) Write(Volume volume, string path, NiftiWriteOptions writeOptions)
    {
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        using var hashing = new HashingStream(file);
        NiftiWriter.Write(volume, hashing, compress: true, writeOptions);
        hashing.Flush();
        // On disk before the dataset is swapped in (or the predictor reads it), so a power loss cannot leave empty files behind a published name.
        file.Flush(flushToDisk: true);
        return (hashing.Sha256(), hashing.Written);
    }
}
