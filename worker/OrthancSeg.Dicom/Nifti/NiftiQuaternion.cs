using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Nifti;

/// <summary>
/// The qform rotation: quaternion (A, B, C, D) with A ≥ 0 and qfac (pixdim[0], ±1). Files store only B, C, D;
/// readers rebuild A = √(1 − B² − C² − D²), so A is known only on the writing side.
/// </summary>
internal readonly record struct NiftiQuaternion(double A, double B, double C, double D, double Qfac)
{
    /// <summary>
    /// nifti_mat44_to_quatern from the NIfTI reference library: normalise the columns of the 3×3 part,
    /// replace it by its nearest orthogonal matrix, flip the third column when left-handed (qfac = −1),
    /// then take the quaternion of the proper rotation. The translation is not part of it.
    /// </summary>
    public static NiftiQuaternion FromAffine(double[,] affine)
    {
        var r = new double[3, 3];
        for (var c = 0; c < 3; c++)
        {
            var length = Math.Sqrt((affine[0, c] * affine[0, c]) + (affine[1, c] * affine[1, c]) + (affine[2, c] * affine[2, c]));
            if (length == 0)
            {
                // The reference code substitutes the unit axis for a zero column rather than failing.
                r[c, c] = 1;
                continue;
            }
            for (var row = 0; row < 3; row++)
            {
                r[row, c] = affine[row, c] / length;
            }
        }

        r = Polar(r);

        double qfac = 1;
        if (Determinant(r) <= 0)
        {
            qfac = -1;
            r[0, 2] = -r[0, 2];
            r[1, 2] = -r[1, 2];
            r[2, 2] = -r[2, 2];
        }

        double r11 = r[0, 0], r12 = r[0, 1], r13 = r[0, 2];
        double r21 = r[1, 0], r22 = r[1, 1], r23 = r[1, 2];
        double r31 = r[2, 0], r32 = r[2, 1], r33 = r[2, 2];
        double a = r11 + r22 + r33 + 1, b, c2, d;
        if (a > 0.5)
        {
            a = 0.5 * Math.Sqrt(a);
            b = 0.25 * (r32 - r23) / a;
            c2 = 0.25 * (r13 - r31) / a;
            d = 0.25 * (r21 - r12) / a;
        }
        else
        {
            var xd = 1.0 + r11 - (r22 + r33);
            var yd = 1.0 + r22 - (r11 + r33);
            var zd = 1.0 + r33 - (r11 + r22);
            if (xd > 1.0)
            {
                b = 0.5 * Math.Sqrt(xd);
                c2 = 0.25 * (r12 + r21) / b;
                d = 0.25 * (r13 + r31) / b;
                a = 0.25 * (r32 - r23) / b;
            }
            else if (yd > 1.0)
            {
                c2 = 0.5 * Math.Sqrt(yd);
                b = 0.25 * (r12 + r21) / c2;
                d = 0.25 * (r23 + r32) / c2;
                a = 0.25 * (r13 - r31) / c2;
            }
            else
            {
                d = 0.5 * Math.Sqrt(zd);
                b = 0.25 * (r13 + r31) / d;
                c2 = 0.25 * (r23 + r32) / d;
                a = 0.25 * (r21 - r12) / d;
            }
            if (a < 0)
            {
                a = -a;
                b = -b;
                c2 = -c2;
                d = -d;
            }
        }
        return new NiftiQuaternion(a, b, c2, d, qfac);
    }

    /// <summary>
    /// B, C, D as the float32 header fields, rounded so that a reader's A = √(1 − B² − C² − D²) comes out
    /// as close to the true A as float32 allows. Near a 180° rotation (A ≈ 0, which every axis-aligned
    /// coronal or sagittal grid is after the LPS → RAS flip) plain rounding leaves 1 − B² − C² − D² at
    /// about ±1e-8, and the square root turns that into a rotation error of about 2e-4 (nibabel reads
    /// it so). Nudging the largest component by a few ulps fixes A without moving the axis measurably.
    /// </summary>
    public (float B, float C, float D) ToStoredSingles()
    {
        float[] q = [(float)B, (float)C, (float)D];
        var largest = 0;
        for (var i = 1; i < 3; i++)
        {
            if (Math.Abs(q[i]) > Math.Abs(q[largest]))
            {
                largest = i;
            }
        }
        var target = A * A;
        for (var step = 0; step < 32; step++)
        {
            var error = RebuiltASquared(q) - target;
            if (error == 0)
            {
                break;
            }
            var current = q[largest];
            // A too large means B² + C² + D² too small: grow the largest component's magnitude, else shrink it.
            var grow = error > 0;
            var nudged = (current >= 0) == grow ? MathF.BitIncrement(current) : MathF.BitDecrement(current);
            q[largest] = nudged;
            if (Math.Abs(RebuiltASquared(q) - target) >= Math.Abs(error))
            {
                q[largest] = current;
                break;
            }
        }
        return (q[0], q[1], q[2]);
    }

    private static double RebuiltASquared(float[] q) =>
        Math.Max(0, 1.0 - (((double)q[0] * q[0]) + ((double)q[1] * q[1]) + ((double)q[2] * q[2])));

    /// <summary>nifti_quatern_to_mat44: the 4×4 voxel → RAS matrix of a qform.</summary>
    public double[,] ToAffine(Vector3D spacing, Vector3D offset)
    {
        double b = B, c = C, d = D;
        var a = 1.0 - ((b * b) + (c * c) + (d * d));
        if (a < 1e-7)
        {
            // Rounding pushed |(b,c,d)| to 1: a 180° rotation, renormalised as the reference code does.
            a = 1.0 / Math.Sqrt((b * b) + (c * c) + (d * d));
            b *= a;
            c *= a;
            d *= a;
            a = 0;
        }
        else
        {
            a = Math.Sqrt(a);
        }

        var xd = spacing.X > 0 ? spacing.X : 1;
        var yd = spacing.Y > 0 ? spacing.Y : 1;
        var zd = spacing.Z > 0 ? spacing.Z : 1;
        if (Qfac < 0)
        {
            zd = -zd;
        }

        var m = new double[4, 4];
        m[0, 0] = ((a * a) + (b * b) - (c * c) - (d * d)) * xd;
        m[0, 1] = 2.0 * ((b * c) - (a * d)) * yd;
        m[0, 2] = 2.0 * ((b * d) + (a * c)) * zd;
        m[1, 0] = 2.0 * ((b * c) + (a * d)) * xd;
        m[1, 1] = ((a * a) + (c * c) - (b * b) - (d * d)) * yd;
        m[1, 2] = 2.0 * ((c * d) - (a * b)) * zd;
        m[2, 0] = 2.0 * ((b * d) - (a * c)) * xd;
        m[2, 1] = 2.0 * ((c * d) + (a * b)) * yd;
        m[2, 2] = ((a * a) + (d * d) - (c * c) - (b * b)) * zd;
        m[0, 3] = offset.X;
        m[1, 3] = offset.Y;
        m[2, 3] = offset.Z;
        m[3, 3] = 1;
        return m;
    }

    private static double Determinant(double[,] r) =>
        (r[0, 0] * r[1, 1] * r[2, 2]) - (r[0, 0] * r[2, 1] * r[1, 2]) - (r[1, 0] * r[0, 1] * r[2, 2])
        + (r[1, 0] * r[2, 1] * r[0, 2]) + (r[2, 0] * r[0, 1] * r[1, 2]) - (r[2, 0] * r[1, 1] * r[0, 2]);

    /// <summary>
    /// nifti_mat33_polar: the orthogonal factor of the polar decomposition by scaled Newton iteration, so a
    /// slightly non-orthogonal direction matrix (DICOM cosines are decimal strings) still yields a rotation.
    /// </summary>
    private static double[,] Polar(double[,] a)
    {
        var x = (double[,])a.Clone();
        var gam = Determinant(x);
        while (gam == 0)
        {
            gam = 0.00001 * (0.001 + RowNorm(x));
            x[0, 0] += gam;
            x[1, 1] += gam;
            x[2, 2] += gam;
            gam = Determinant(x);
        }

        double dif = 1;
        var z = new double[3, 3];
        for (var k = 0; ; k++)
        {
            var y = Inverse(x);
            double gmi;
            if (dif > 0.3)
            {
                var alp = Math.Sqrt(RowNorm(x) * ColumnNorm(x));
                var bet = Math.Sqrt(RowNorm(y) * ColumnNorm(y));
                gam = Math.Sqrt(bet / alp);
                gmi = 1.0 / gam;
            }
            else
            {
                gam = gmi = 1.0;
            }

            dif = 0;
            for (var i = 0; i < 3; i++)
            {
                for (var j = 0; j < 3; j++)
                {
                    z[i, j] = 0.5 * ((gam * x[i, j]) + (gmi * y[j, i]));
                    dif += Math.Abs(z[i, j] - x[i, j]);
                }
            }
            if (k >= 100 || dif < 3e-6)
            {
                return z;
            }
            (x, z) = (z, x);
        }
    }

    private static double[,] Inverse(double[,] r)
    {
        var det = Determinant(r);
        var inv = new double[3, 3];
        if (det == 0)
        {
            return inv;
        }
        det = 1.0 / det;
        inv[0, 0] = det * ((r[1, 1] * r[2, 2]) - (r[1, 2] * r[2, 1]));
        inv[0, 1] = det * (-(r[0, 1] * r[2, 2]) + (r[0, 2] * r[2, 1]));
        inv[0, 2] = det * ((r[0, 1] * r[1, 2]) - (r[0, 2] * r[1, 1]));
        inv[1, 0] = det * (-(r[1, 0] * r[2, 2]) + (r[1, 2] * r[2, 0]));
        inv[1, 1] = det * ((r[0, 0] * r[2, 2]) - (r[0, 2] * r[2, 0]));
        inv[1, 2] = det * (-(r[0, 0] * r[1, 2]) + (r[0, 2] * r[1, 0]));
        inv[2, 0] = det * ((r[1, 0] * r[2, 1]) - (r[1, 1] * r[2, 0]));
        inv[2, 1] = det * (-(r[0, 0] * r[2, 1]) + (r[0, 1] * r[2, 0]));
        inv[2, 2] = det * ((r[0, 0] * r[1, 1]) - (r[0, 1] * r[1, 0]));
        return inv;
    }

    private static double RowNorm(double[,] r)
    {
        double max = 0;
        for (var i = 0; i < 3; i++)
        {
            max = Math.Max(max, Math.Abs(r[i, 0]) + Math.Abs(r[i, 1]) + Math.Abs(r[i, 2]));
        }
        return max;
    }

    private static double ColumnNorm(double[,] r)
    {
        double max = 0;
        for (var j = 0; j < 3; j++)
        {
            max = Math.Max(max, Math.Abs(r[0, j]) + Math.Abs(r[1, j]) + Math.Abs(r[2, j]));
        }
        return max;
    }
}
