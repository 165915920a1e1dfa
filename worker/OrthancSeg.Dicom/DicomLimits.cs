using System.Globalization;

namespace OrthancSeg.Dicom;

/// <summary>
/// How much a file may make the codec allocate. Sizes in DICOM tags are what the sender claims; every one of these is
/// checked against the claim before the buffer is made, so a small hostile file is refused with a reason instead of asking
/// for gigabytes.
/// </summary>
public sealed record DicomLimits
{
    /// <summary>2 GiB: a 1024×1024×512 float volume, far beyond a CT or MR series nnU-Net trains on.</summary>
    public const long DefaultMaxVolumeBytes = 2L << 30;

    /// <summary>1 GiB: more than any single-frame image or SEG of a volume under <see cref="DefaultMaxVolumeBytes"/> needs.</summary>
    public const long DefaultMaxInflatedBytes = 1L << 30;

    public static DicomLimits Default { get; } = new();

    /// <summary>Largest volume (Rows × Columns × slices × bytes per voxel) a series may be built into, or a label map made on.</summary>
    public long MaxVolumeBytes { get; init; } = DefaultMaxVolumeBytes;

    /// <summary>Largest data set a deflated (1.2.840.10008.1.2.1.99) file may inflate to.</summary>
    public long MaxInflatedBytes { get; init; } = DefaultMaxInflatedBytes;

    /// <summary>
    /// The volume of <paramref name="columns"/> × <paramref name="rows"/> × <paramref name="slices"/> voxels of
    /// <paramref name="bytesPerVoxel"/> bytes, refused when it exceeds <see cref="MaxVolumeBytes"/>.
    /// </summary>
    public long CheckVolume(long columns, long rows, long slices, int bytesPerVoxel, string what)
    {
        // Each factor is at most 65535 (US) or int.MaxValue (frames), so the product of four is computed in decimal to stay exact.
        var bytes = (decimal)columns * rows * slices * bytesPerVoxel;
        // A volume is one array: even under a 2 GiB limit it cannot pass Array.MaxLength (2 GiB less 57 bytes).
        if (bytes > MaxVolumeBytes || bytes > Array.MaxLength)
        {
            throw new DicomException(string.Create(CultureInfo.InvariantCulture,
                $"{what} would be {columns}×{rows}×{slices} voxels of {bytesPerVoxel} byte(s) = {Mib(bytes)} MiB, over the limit of {Mib(MaxVolumeBytes)} MiB per volume (MaxVolumeBytes)"));
        }
        return (long)bytes;
    }

    private static string Mib(decimal bytes) => (bytes / (1 << 20)).ToString("0.#", CultureInfo.InvariantCulture);
}
