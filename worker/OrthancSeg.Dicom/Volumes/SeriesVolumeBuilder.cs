using System.Globalization;
using System.Runtime.InteropServices;

namespace OrthancSeg.Dicom.Volumes;

/// <summary>
/// Turns the instances of one CT/MR series into one volume on a regular, orthonormal grid, or refuses with a
/// <see cref="DicomException"/> that names the problem and the slices concerned.
/// </summary>
/// <remarks>
/// Slices are sorted ascending along the normal rowCos × colCos (never by InstanceNumber); the slice spacing
/// comes from the positions, not from SliceThickness. Refused: no image instances; missing
/// ImagePositionPatient/ImageOrientationPatient/PixelSpacing; colour or multi-frame images; mixed orientation,
/// Rows/Columns or PixelSpacing; several images at one position (phases, echoes, acquisitions); missing slices
/// and otherwise uneven spacing (tolerance max(0.01 mm, 1% of the spacing)); sheared stacks (gantry tilt).
/// Localizers (ImageType containing LOCALIZER) and instances without pixel data are dropped with a warning.
/// A single slice is a valid volume one voxel deep: its depth is SpacingBetweenSlices, else SliceThickness,
/// else 1 mm, because nnU-Net and NIfTI need a positive spacing and a 2-D image has no other.
/// Voxels are rescaled per slice (RescaleSlope/Intercept); the volume is Int16 when every slope is 1, every
/// intercept an integer and every value fits, else Float32.
/// </remarks>
public static class SeriesVolumeBuilder
{
    private const double OrientationTolerance = 1e-4;
    private const double DuplicatePositionTolerance = 0.01;
    private const int MaxListed = 5;

    /// <param name="instances">The series' instances.</param>
    /// <param name="limits">Caps on the volume's size, checked before it is allocated; null: <see cref="DicomLimits.Default"/>.</param>
    public static SeriesVolume Build(IEnumerable<DicomFile> instances, DicomLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(instances);
        limits ??= DicomLimits.Default;
        var warnings = new List<string>();
        var slices = Collect(instances, warnings);
        var first = slices[0];

        var seriesUid = Single(slices, s => s.File.Dataset.GetString(DicomTags.SeriesInstanceUID), "SeriesInstanceUID");
        var studyUid = Single(slices, s => s.File.Dataset.GetString(DicomTags.StudyInstanceUID), "StudyInstanceUID");
        var frameOfReferenceUid = Single(slices, s => s.File.Dataset.GetString(DicomTags.FrameOfReferenceUID), "FrameOfReferenceUID");
        CheckSameGeometry(slices);

        var (row, column, normal) = Orthonormalise(first.Orientation);
        foreach (var slice in slices)
        {
            slice.Distance = slice.Position.Dot(normal);
        }
        slices.Sort((a, b) => a.Distance != b.Distance ? a.Distance.CompareTo(b.Distance) : string.CompareOrdinal(a.Uid, b.Uid));
        CheckDistinctPositions(slices);
        var sliceSpacing = SliceSpacing(slices, warnings);
        CheckNotSheared(slices, normal, first.PixelSpacing);

        var geometry = new VolumeGeometry(first.Columns, first.Rows, slices.Count,
            new Vector3D(first.PixelSpacing[1], first.PixelSpacing[0], sliceSpacing), slices[0].Position, row, column, normal);
        var volume = FillVolume(geometry, slices, limits);
        if (slices.Any(s => s.File.Dataset.GetString(DicomTags.PhotometricInterpretation) == "MONOCHROME1"))
        {
            warnings.Add("MONOCHROME1 (inverted grey scale) values were kept as stored");
        }
        var grid = new SeriesGrid(geometry, slices.Select(s => s.Uid).ToArray(), slices.Select(s => s.Position).ToArray(),
            frameOfReferenceUid, studyUid, seriesUid);
        return new SeriesVolume(volume, grid, Summarise(geometry, volume.Type), warnings);
    }

    /// <summary>"axial", "coronal" or "sagittal" when the normal is within about 11° of a patient axis, else "oblique".</summary>
    public static string PlaneName(Vector3D normal)
    {
        var (x, y, z) = (Math.Abs(normal.X), Math.Abs(normal.Y), Math.Abs(normal.Z));
        const double nearAxis = 0.98;
        return z >= nearAxis ? "axial" : y >= nearAxis ? "coronal" : x >= nearAxis ? "sagittal" : "oblique";
    }

    public static string Summarise(VolumeGeometry geometry, VoxelType type)
    {
        ArgumentNullException.ThrowIfNull(geometry);
        var s = geometry.Spacing;
        return string.Create(CultureInfo.InvariantCulture,
            $"{geometry.Columns}×{geometry.Rows}×{geometry.Slices} voxels, spacing {s.X:0.###}×{s.Y:0.###}×{s.Z:0.###} mm, {PlaneName(geometry.SliceDirection)}, {type.ToString().ToLowerInvariant()}");
    }

    private sealed class Slice(DicomFile file, string uid, Vector3D position, double[] orientation, int rows, int columns, double[] pixelSpacing)
    {
        public DicomFile File { get; } = file;
        public string Uid { get; } = uid;
        public Vector3D Position { get; } = position;
        public double[] Orientation { get; } = orientation;
        public int Rows { get; } = rows;
        public int Columns { get; } = columns;
        public double[] PixelSpacing { get; } = pixelSpacing;
        public double Distance { get; set; }

        public override string ToString()
        {
            var number = File.Dataset.GetString(DicomTags.InstanceNumber);
            return number is null ? Uid : $"#{number} {Uid}";
        }
    }

    private static List<Slice> Collect(IEnumerable<DicomFile> instances, List<string> warnings)
    {
        var slices = new List<Slice>();
        var localizers = 0;
        var withoutPixels = 0;
        var missingPosition = new List<string>();
        foreach (var file in instances)
        {
            var ds = file.Dataset;
            if (!ds.Contains(DicomTags.PixelData) || SopClasses.IsSegmentation(ds.GetString(DicomTags.SOPClassUID)))
            {
                withoutPixels++;
                continue;
            }
            var uid = ds.GetString(DicomTags.SOPInstanceUID) ?? throw new DicomException("An image has no SOPInstanceUID");
            if (ds.GetStrings(DicomTags.ImageType).Any(t => t.Equals("LOCALIZER", StringComparison.OrdinalIgnoreCase)))
            {
                localizers++;
                continue;
            }
            var frames = ds.GetInt(DicomTags.NumberOfFrames) ?? 1;
            if (frames != 1)
            {
                throw new DicomException($"Instance {uid} is a multi-frame image ({frames} frames); only single-frame series can be built into a volume");
            }
            var samples = ds.GetInt(DicomTags.SamplesPerPixel) ?? 1;
            var photometric = ds.GetString(DicomTags.PhotometricInterpretation) ?? "MONOCHROME2";
            if (samples != 1 || photometric is not ("MONOCHROME1" or "MONOCHROME2"))
            {
                throw new DicomException($"Instance {uid} is a colour image (SamplesPerPixel {samples}, {photometric}); only grey-scale (SamplesPerPixel 1) CT/MR series can be built into a volume");
            }
            var position = ds.GetDoubles(DicomTags.ImagePositionPatient);
            var orientation = ds.GetDoubles(DicomTags.ImageOrientationPatient);
            if (position.Length != 3 || orientation.Length != 6)
            {
                missingPosition.Add(uid);
                continue;
            }
            var spacing = ds.GetDoubles(DicomTags.PixelSpacing);
            if (spacing.Length != 2 || spacing[0] <= 0 || spacing[1] <= 0)
            {
                throw new DicomException($"Instance {uid} has no usable PixelSpacing ('{ds.GetText(DicomTags.PixelSpacing)}')");
            }
            var rows = ds.GetInt(DicomTags.Rows) ?? 0;
            var columns = ds.GetInt(DicomTags.Columns) ?? 0;
            if (rows <= 0 || columns <= 0)
            {
                throw new DicomException($"Instance {uid} has no Rows/Columns");
            }
            slices.Add(new Slice(file, uid, new Vector3D(position[0], position[1], position[2]), orientation, rows, columns, spacing));
        }
        if (missingPosition.Count > 0)
        {
            throw new DicomException($"{missingPosition.Count} image(s) lack ImagePositionPatient or ImageOrientationPatient, so they cannot be placed in a volume: {List(missingPosition)}");
        }
        if (slices.Count == 0)
        {
            throw new DicomException($"The series has no image instances to build a volume from ({localizers} localizer(s) dropped, {withoutPixels} instance(s) without pixel data)");
        }
        if (localizers > 0)
        {
            warnings.Add($"{localizers} localizer image(s) dropped");
        }
        if (withoutPixels > 0)
        {
            warnings.Add($"{withoutPixels} instance(s) without image pixel data ignored");
        }
        var duplicates = slices.GroupBy(s => s.Uid, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (duplicates.Count > 0)
        {
            throw new DicomException($"The same SOPInstanceUID appears more than once: {List(duplicates)}");
        }
        return slices;
    }

    private static string Single(List<Slice> slices, Func<Slice, string?> get, string name)
    {
        var values = slices.Select(get).Distinct(StringComparer.Ordinal).ToList();
        if (values.Contains(null))
        {
            var without = slices.Where(s => get(s) is null).Select(s => s.ToString()).ToList();
            throw new DicomException($"{without.Count} image(s) have no {name}: {List(without)}");
        }
        if (values.Count > 1)
        {
            throw new DicomException($"The images belong to {values.Count} different {name}s ({List(values!)}); a volume is built from one series");
        }
        return values[0]!;
    }

    private static void CheckSameGeometry(List<Slice> slices)
    {
        var first = slices[0];
        var otherOrientation = slices.Where(s => !Close(s.Orientation, first.Orientation, OrientationTolerance)).ToList();
        if (otherOrientation.Count > 0)
        {
            throw new DicomException($"Mixed orientation: {otherOrientation.Count} image(s) have an ImageOrientationPatient other than {Format(first.Orientation)} of {first} (e.g. {Format(otherOrientation[0].Orientation)}): {List(otherOrientation)}");
        }
        var otherSize = slices.Where(s => s.Rows != first.Rows || s.Columns != first.Columns).ToList();
        if (otherSize.Count > 0)
        {
            throw new DicomException($"Mixed Rows/Columns: {otherSize.Count} image(s) are not {first.Rows}×{first.Columns} like {first} (e.g. {otherSize[0].Rows}×{otherSize[0].Columns}): {List(otherSize)}");
        }
        var otherSpacing = slices.Where(s => !Close(s.PixelSpacing, first.PixelSpacing, 1e-4 * first.PixelSpacing.Max())).ToList();
        if (otherSpacing.Count > 0)
        {
            throw new DicomException($"Mixed PixelSpacing: {otherSpacing.Count} image(s) differ from {Format(first.PixelSpacing)} of {first} (e.g. {Format(otherSpacing[0].PixelSpacing)}): {List(otherSpacing)}");
        }
    }

    private static (Vector3D Row, Vector3D Column, Vector3D Normal) Orthonormalise(double[] orientation)
    {
        var rowCos = new Vector3D(orientation[0], orientation[1], orientation[2]);
        var columnCos = new Vector3D(orientation[3], orientation[4], orientation[5]);
        if (rowCos.Length < 0.5 || columnCos.Length < 0.5 || Math.Abs(rowCos.Normalized().Dot(columnCos.Normalized())) > 0.01)
        {
            throw new DicomException($"ImageOrientationPatient {Format(orientation)} is not two perpendicular unit vectors");
        }
        var row = rowCos.Normalized();
        var column = (columnCos - row * columnCos.Dot(row)).Normalized();
        return (row, column, row.Cross(column));
    }

    private static void CheckDistinctPositions(List<Slice> slices)
    {
        var groups = new List<List<Slice>>();
        for (var k = 1; k < slices.Count; k++)
        {
            if (slices[k].Distance - slices[k - 1].Distance <= DuplicatePositionTolerance)
            {
                if (groups.Count == 0 || !groups[^1].Contains(slices[k - 1]))
                {
                    groups.Add([slices[k - 1]]);
                }
                groups[^1].Add(slices[k]);
            }
        }
        if (groups.Count > 0)
        {
            var described = groups.Take(MaxListed).Select(g => string.Create(CultureInfo.InvariantCulture, $"{g.Count} images at position {g[0].Distance:0.###} mm ({string.Join(", ", g)})"));
            throw new DicomException($"Several images at one position in {groups.Count} place(s): the series holds several phases, echoes or acquisitions; split it first. {string.Join("; ", described)}");
        }
    }

    private static double SliceSpacing(List<Slice> slices, List<string> warnings)
    {
        if (slices.Count == 1)
        {
            var ds = slices[0].File.Dataset;
            var declared = ds.GetDouble(DicomTags.SpacingBetweenSlices) ?? ds.GetDouble(DicomTags.SliceThickness);
            var depth = declared is > 0 ? declared.Value : 1.0;
            warnings.Add(string.Create(CultureInfo.InvariantCulture, $"single slice: depth {depth:0.###} mm taken from {(declared is > 0 ? "the declared spacing/thickness" : "nothing (default 1 mm)")}"));
            return depth;
        }
        var gaps = new double[slices.Count - 1];
        for (var k = 0; k < gaps.Length; k++)
        {
            gaps[k] = slices[k + 1].Distance - slices[k].Distance;
        }
        var sorted = gaps.Order().ToArray();
        var usual = sorted[(sorted.Length - 1) / 2];
        var tolerance = Math.Max(0.01, 0.01 * usual);
        var missing = new List<string>();
        var uneven = new List<string>();
        for (var k = 0; k < gaps.Length; k++)
        {
            var gap = gaps[k];
            if (Math.Abs(gap - usual) <= tolerance)
            {
                continue;
            }
            var multiple = Math.Round(gap / usual);
            var between = string.Create(CultureInfo.InvariantCulture, $"positions {slices[k].Distance:0.###} and {slices[k + 1].Distance:0.###} mm (images {slices[k]} and {slices[k + 1]})");
            if (multiple >= 2 && Math.Abs(gap - multiple * usual) <= tolerance * multiple)
            {
                missing.Add(string.Create(CultureInfo.InvariantCulture, $"{(multiple == 2 ? "slice" : $"{multiple - 1} slices")} missing between {between}"));
            }
            else
            {
                uneven.Add(string.Create(CultureInfo.InvariantCulture, $"gap of {gap:0.###} mm between {between}"));
            }
        }
        if (missing.Count > 0 || uneven.Count > 0)
        {
            var problems = missing.Concat(uneven).ToList();
            var head = missing.Count > 0 ? "Incomplete series" : "Uneven slice spacing";
            throw new DicomException(string.Create(CultureInfo.InvariantCulture,
                $"{head}: the usual spacing is {usual:0.###} mm (tolerance {tolerance:0.###} mm) but {string.Join("; ", problems.Take(MaxListed))}{(problems.Count > MaxListed ? $"; and {problems.Count - MaxListed} more" : "")}"));
        }
        return (slices[^1].Distance - slices[0].Distance) / (slices.Count - 1);
    }

    private static void CheckNotSheared(List<Slice> slices, Vector3D normal, double[] pixelSpacing)
    {
        // A shear below a tenth of a pixel over the whole stack cannot move a label by a voxel.
        var tolerance = Math.Max(0.01, 0.1 * Math.Min(pixelSpacing[0], pixelSpacing[1]));
        var origin = slices[0];
        Slice? worst = null;
        var worstOffset = 0.0;
        foreach (var slice in slices)
        {
            var step = slice.Position - origin.Position;
            var inPlane = (step - normal * step.Dot(normal)).Length;
            if (inPlane > tolerance && inPlane > worstOffset)
            {
                worst = slice;
                worstOffset = inPlane;
            }
        }
        if (worst is not null)
        {
            var tilt = origin.File.Dataset.GetDouble(DicomTags.GantryDetectorTilt);
            throw new DicomException(string.Create(CultureInfo.InvariantCulture,
                $"Sheared stack (gantry tilt{(tilt is { } t && t != 0 ? $" {t:0.##}°" : "")}): the slices are not stacked along their normal; image {worst} at position {worst.Distance:0.###} mm is {worstOffset:0.###} mm off the stack axis in-plane. Such a volume has no orthonormal grid; reconstruct without tilt or resample first"));
        }
    }

    private readonly record struct PixelFormat(int BitsAllocated, int Shift, uint Mask, int SignShift, double Slope, double Intercept);

    private static PixelFormat FormatOf(Slice slice)
    {
        var ds = slice.File.Dataset;
        var allocated = ds.GetInt(DicomTags.BitsAllocated) ?? throw new DicomException($"Image {slice} has no BitsAllocated");
        if (allocated is not (8 or 16 or 32))
        {
            throw new DicomException($"Image {slice} has BitsAllocated {allocated}; CT/MR volumes need 8, 16 or 32");
        }
        var stored = ds.GetInt(DicomTags.BitsStored) ?? allocated;
        var highBit = ds.GetInt(DicomTags.HighBit) ?? stored - 1;
        var shift = highBit - stored + 1;
        if (stored <= 0 || stored > allocated || shift < 0 || highBit >= allocated)
        {
            throw new DicomException($"Image {slice} has inconsistent BitsAllocated {allocated}, BitsStored {stored}, HighBit {highBit}");
        }
        var signed = (ds.GetInt(DicomTags.PixelRepresentation) ?? 0) == 1;
        var slope = ds.GetDouble(DicomTags.RescaleSlope) ?? 1.0;
        var intercept = ds.GetDouble(DicomTags.RescaleIntercept) ?? 0.0;
        if (!double.IsFinite(slope) || !double.IsFinite(intercept) || slope == 0)
        {
            throw new DicomException(string.Create(CultureInfo.InvariantCulture, $"Image {slice} has an unusable rescale (slope {slope}, intercept {intercept})"));
        }
        var mask = stored == 32 ? uint.MaxValue : (1u << stored) - 1;
        return new PixelFormat(allocated, shift, mask, signed ? 32 - stored : 0, slope, intercept);
    }

    private static Volume FillVolume(VolumeGeometry geometry, List<Slice> slices, DicomLimits limits)
    {
        var formats = slices.Select(FormatOf).ToArray();
        // Rows, Columns and the slice count are claims until the pixel data is seen: the volume they ask for is checked against the
        // limit, and every slice's pixel data against its declared size, before the volume is allocated.
        limits.CheckVolume(geometry.Columns, geometry.Rows, geometry.Slices, 2, "The volume");
        foreach (var slice in slices)
        {
            FramePixels.Open(slice.File.Dataset, slice.File.TransferSyntaxUid, $"Image {slice}");
        }
        var integral = formats.All(f => f.Slope == 1 && f.Intercept == Math.Round(f.Intercept) && Math.Abs(f.Intercept) < 65536
            && !(f.BitsAllocated == 32 && f.SignShift == 0 && f.Mask == uint.MaxValue));
        if (integral)
        {
            var volume = Volume.Allocate(geometry, VoxelType.Int16);
            var overflow = 0;
            Parallelism.For(slices.Count, (k, state) =>
            {
                var target = MemoryMarshal.Cast<byte, short>(volume.SliceBytes(k));
                if (!DecodeInt16(FrameOf(slices[k]).Span, target, formats[k]))
                {
                    Interlocked.Exchange(ref overflow, 1);
                    state.Stop();
                }
            });
            if (overflow == 0)
            {
                return volume;
            }
        }
        limits.CheckVolume(geometry.Columns, geometry.Rows, geometry.Slices, 4, "The volume (float32, as its rescaled values are not int16)");
        var floats = Volume.Allocate(geometry, VoxelType.Float32);
        Parallelism.For(slices.Count, (k, _) =>
            DecodeFloat32(FrameOf(slices[k]).Span, MemoryMarshal.Cast<byte, float>(floats.SliceBytes(k)), formats[k]));
        return floats;
    }

    private static ReadOnlyMemory<byte> FrameOf(Slice slice) =>
        FramePixels.Frame(slice.File.Dataset, slice.File.TransferSyntaxUid, 0, $"Image {slice}");

    /// <summary>Stored value: shifted down to bit 0, masked to BitsStored, sign-extended when signed.</summary>
    private static int Stored(uint raw, in PixelFormat f) => ((int)((raw >> f.Shift) & f.Mask) << f.SignShift) >> f.SignShift;

    private static bool DecodeInt16(ReadOnlySpan<byte> source, Span<short> target, in PixelFormat f)
    {
        var intercept = (int)f.Intercept;
        switch (f.BitsAllocated)
        {
            case 16:
                var words = MemoryMarshal.Cast<byte, ushort>(source);
                for (var i = 0; i < target.Length; i++)
                {
                    var v = Stored(words[i], f) + intercept;
                    if (v is < short.MinValue or > short.MaxValue)
                    {
                        return false;
                    }
                    target[i] = (short)v;
                }
                return true;
            case 8:
                for (var i = 0; i < target.Length; i++)
                {
                    var v = Stored(source[i], f) + intercept;
                    if (v is < short.MinValue or > short.MaxValue)
                    {
                        return false;
                    }
                    target[i] = (short)v;
                }
                return true;
            default:
                var longs = MemoryMarshal.Cast<byte, uint>(source);
                for (var i = 0; i < target.Length; i++)
                {
                    var v = (long)Stored(longs[i], f) + intercept;
                    if (v is < short.MinValue or > short.MaxValue)
                    {
                        return false;
                    }
                    target[i] = (short)v;
                }
                return true;
        }
    }

    private static void DecodeFloat32(ReadOnlySpan<byte> source, Span<float> target, in PixelFormat f)
    {
        var unsigned32 = f.BitsAllocated == 32 && f.SignShift == 0 && f.Mask == uint.MaxValue;
        for (var i = 0; i < target.Length; i++)
        {
            double stored = f.BitsAllocated switch
            {
                16 => Stored(MemoryMarshal.Read<ushort>(source[(2 * i)..]), f),
                8 => Stored(source[i], f),
                _ when unsigned32 => MemoryMarshal.Read<uint>(source[(4 * i)..]),
                _ => Stored(MemoryMarshal.Read<uint>(source[(4 * i)..]), f),
            };
            target[i] = (float)((stored * f.Slope) + f.Intercept);
        }
    }

    private static bool Close(double[] a, double[] b, double tolerance) =>
        a.Length == b.Length && a.Zip(b).All(p => Math.Abs(p.First - p.Second) <= tolerance);

    private static string Format(double[] values) => string.Join('\\', values.Select(v => v.ToString("0.######", CultureInfo.InvariantCulture)));

    private static string List<T>(IReadOnlyCollection<T> items) =>
        string.Join(", ", items.Take(MaxListed)) + (items.Count > MaxListed ? $" and {items.Count - MaxListed} more" : "");
}
