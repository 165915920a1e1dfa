using System.Globalization;

namespace OrthancSeg.Worker.Datasets;

/// <summary>Free space where a dataset is built, and the words for its shortage.</summary>
internal static class DiskSpace
{
    /// <summary>
    /// Room an export asks for per DICOM byte it downloads. The written .nii.gz files are gzip of the voxels: int16 voxels hold no
    /// more than the DICOM pixel data, and gzip does not grow them, so the DICOM bytes bound the output of an int16 series; the 1.2
    /// is headroom for the label maps, dataset.json and the filesystem. A float32 series (a rescale that does not fit int16)
    /// can exceed it; such a shortage still ends as a failed attempt (see <see cref="IsDiskFull"/>) with its folder removed.
    /// </summary>
    public const double Headroom = 1.2;

    private const int Enospc = 28;

    // MB as df -m counts them (MiB): the figures match what an operator checks with df.
    private const double Mib = 1 << 20;

    /// <summary>Bytes free to an unprivileged writer on the filesystem holding <paramref name="folder"/>.</summary>
    public static long Free(string folder) => new DriveInfo(folder).AvailableFreeSpace;

    /// <summary>Bytes an export that downloads <paramref name="dicomBytes"/> needs: <see cref="Headroom"/> × the DICOM bytes.</summary>
    public static long Needed(long dicomBytes) => (long)Math.Ceiling(Headroom * dicomBytes);

    public static string NotEnough(string folder, long needed, long free) => string.Create(CultureInfo.InvariantCulture,
        $"not enough disk space in {folder}: need ~{Math.Ceiling(needed / Mib)} MB, {Math.Floor(free / Mib)} MB free");

    public static string FilledUp(string folder, IOException e) => string.Create(CultureInfo.InvariantCulture,
        $"not enough disk space in {folder}: the disk filled up during the export, {Math.Floor(FreeOrZero(folder) / Mib)} MB free when it failed ({e.Message})");

    /// <summary>ENOSPC or EDQUOT: .NET on Unix reports them as a plain <see cref="IOException"/> whose HResult is the errno.</summary>
    public static bool IsDiskFull(IOException e) =>
        e.HResult is Enospc or 122 || e.Message.Contains("No space left on device", StringComparison.Ordinal)
        || e.Message.Contains("Disk quota exceeded", StringComparison.Ordinal);

    private static long FreeOrZero(string folder)
    {
        try
        {
            return Free(folder);
        }
        catch (IOException)
        {
            return 0;
        }
    }

}
