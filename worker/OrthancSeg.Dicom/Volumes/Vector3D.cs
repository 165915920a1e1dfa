namespace OrthancSeg.Dicom.Volumes;

/// <summary>A point or direction in millimetres; double precision because DICOM positions are decimal strings.</summary>
public readonly record struct Vector3D(double X, double Y, double Z)
{
    public double Length => Math.Sqrt((X * X) + (Y * Y) + (Z * Z));

    public static Vector3D operator +(Vector3D a, Vector3D b) => new(a.X + b.X, a.Y + b.Y, a.Z + b.Z);

    public static Vector3D operator -(Vector3D a, Vector3D b) => new(a.X - b.X, a.Y - b.Y, a.Z - b.Z);

    public static Vector3D operator *(Vector3D a, double s) => new(a.X * s, a.Y * s, a.Z * s);

    public static Vector3D operator -(Vector3D a) => new(-a.X, -a.Y, -a.Z);

    public double Dot(Vector3D other) => (X * other.X) + (Y * other.Y) + (Z * other.Z);

    public Vector3D Cross(Vector3D other) => new((Y * other.Z) - (Z * other.Y), (Z * other.X) - (X * other.Z), (X * other.Y) - (Y * other.X));

    public Vector3D Normalized()
    {
        var length = Length;
        return length == 0 ? throw new InvalidOperationException("A zero vector has no direction") : this * (1 / length);
    }

    public static Vector3D Add(Vector3D left, Vector3D right) => left + right;

    public static Vector3D Subtract(Vector3D left, Vector3D right) => left - right;

    public static Vector3D Multiply(Vector3D left, double right) => left * right;

    public static Vector3D Negate(Vector3D item) => -item;
}
