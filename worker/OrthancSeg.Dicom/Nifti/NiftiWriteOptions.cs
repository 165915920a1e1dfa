namespace OrthancSeg.Dicom.Nifti;

/// <summary>How <see cref="NiftiWriter"/> compresses a .nii.gz.</summary>
public sealed record NiftiWriteOptions
{
    /// <summary>The defaults: level 3, all cores, 256 KiB blocks.</summary>
    public static NiftiWriteOptions Default { get; } = new();

    /// <summary>
    /// zlib level 1 (fastest) .. 9 (smallest); .NET's zlib-ng behind it. Measured on a synthetic
    /// 512×512×200 CT (benchmarks/, `nifti`): level 3 is 1.008× the size of `dcm2niix -z y` (pigz -6)
    /// at roughly 1.5–2× the speed of level 6 (1.004×); level 2 is 1.024×, and level 1 (zlib-ng's
    /// "quick" strategy) 1.45×, far outside the 1.05× budget.
    /// </summary>
    public int CompressionLevel { get; init; } = 3;

    /// <summary>How many blocks are deflated at once; 1 compresses on the calling thread only.</summary>
    public int MaxDegreeOfParallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>
    /// Bytes of the .nii stream per independently deflated block. Larger blocks compress slightly better
    /// (no shared dictionary across blocks); smaller ones spread better over cores.
    /// </summary>
    public int BlockSize { get; init; } = 256 * 1024;

    internal void Validate()
    {
        if (CompressionLevel is < 1 or > 9)
        {
            throw new ArgumentOutOfRangeException(nameof(CompressionLevel), CompressionLevel, "The zlib compression level must be 1..9");
        }
        if (MaxDegreeOfParallelism < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxDegreeOfParallelism), MaxDegreeOfParallelism, "At least one thread must compress");
        }
        if (BlockSize is < 1024 or > 64 * 1024 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(BlockSize), BlockSize, "The block size must be 1 KiB .. 64 MiB");
        }
    }
}
