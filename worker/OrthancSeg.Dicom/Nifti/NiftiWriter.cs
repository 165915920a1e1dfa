using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Nifti;

/// <summary>
/// Writes a <see cref="Volume"/> as a single-file NIfTI-1 image (.nii, or .nii.gz through a parallel
/// block gzip). The header carries the grid only: sform and qform from the volume geometry, mm units,
/// and "OrthancSeg" as description, nothing that identifies a patient.
/// </summary>
public static class NiftiWriter
{
    public static void Write(Volume volume, Stream output, bool compress) => Write(volume, output, compress, NiftiWriteOptions.Default);

    public static void Write(Volume volume, Stream output, bool compress, NiftiWriteOptions options)
    {
        ArgumentNullException.ThrowIfNull(volume);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var header = BuildHeader(volume);
        if (!compress)
        {
            output.Write(header);
            output.Write(volume.Data);
            return;
        }
        ParallelGzip.Compress([header, volume.Data], output, options.CompressionLevel, options.BlockSize, options.MaxDegreeOfParallelism);
    }

    /// <summary>Writes <paramref name="path"/>, gzip-compressed when it ends in .nii.gz.</summary>
    public static void WriteFile(Volume volume, string path) => WriteFile(volume, path, NiftiWriteOptions.Default);

    public static void WriteFile(Volume volume, string path, NiftiWriteOptions options)
    {
        ArgumentNullException.ThrowIfNull(volume);
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var compress = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase);
        var header = BuildHeader(volume);

        // Write beside the target and rename: a crash or a full disk never leaves a truncated file under
        // the final name for nnU-Net (or a later reader) to pick up.
        var full = Path.GetFullPath(path);
        var temporary = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                if (compress)
                {
                    ParallelGzip.Compress([header, volume.Data], file, options.CompressionLevel, options.BlockSize, options.MaxDegreeOfParallelism);
                }
                else
                {
                    file.Write(header);
                    file.Write(volume.Data);
                }
            }
            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    private static byte[] BuildHeader(Volume volume)
    {
        var g = volume.Geometry;
        if (g.Columns > short.MaxValue || g.Rows > short.MaxValue || g.Slices > short.MaxValue)
        {
            throw new ArgumentException($"NIfTI-1 stores dimensions as int16; a {g.Columns}×{g.Rows}×{g.Slices} volume does not fit", nameof(volume));
        }
        return NiftiHeader.Build(volume);
    }
}
