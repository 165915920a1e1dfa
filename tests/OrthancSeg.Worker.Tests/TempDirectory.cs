namespace OrthancSeg.Worker.Tests;

/// <summary>A temporary directory for secret files, removed on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("orthancseg-unit-").FullName;

    /// <summary>Writes a file readable by its owner only (mode 600), as secrets must be, unless another mode is given.</summary>
    public string Write(string name, string content, UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite)
    {
        var path = System.IO.Path.Combine(Path, name);
        File.WriteAllText(path, content);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, mode);
        }
        return path;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
