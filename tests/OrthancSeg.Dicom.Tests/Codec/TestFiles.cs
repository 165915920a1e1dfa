using System.Diagnostics;

namespace OrthancSeg.Dicom.Tests.Codec;

/// <summary>
/// The pydicom test corpus (Debian's python3-pydicom, installed by `make test`) and the external tools the codec is
/// checked against. A missing tool fails the test: a skipped interoperability test would hide a broken codec.
/// </summary>
internal static class TestFiles
{
    public const string PydicomDirectory = "/usr/lib/python3/dist-packages/pydicom/data/test_files";

    /// <summary>Debian's interpreter: the `python3` on PATH may be a pyenv one without pydicom.</summary>
    public const string Python = "/usr/bin/python3";

    public static string Pydicom(string name)
    {
        var path = Path.Combine(PydicomDirectory, name);
        Assert.True(File.Exists(path), $"{path} is missing: install Debian's python3-pydicom (make test does)");
        return path;
    }

    public static byte[] PydicomBytes(string name) => File.ReadAllBytes(Pydicom(name));

    /// <summary>Runs a tool to completion and returns its exit code, stdout and stderr.</summary>
    public static (int ExitCode, string Stdout, string Stderr) Run(string fileName, params string[] arguments)
    {
        Assert.True(File.Exists(fileName), $"{fileName} is missing: install it (make test does)");
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout, stderr.Result);
    }

    /// <summary>Runs a tool that must succeed and returns its stdout.</summary>
    public static string RunChecked(string fileName, params string[] arguments)
    {
        var (exitCode, stdout, stderr) = Run(fileName, arguments);
        Assert.True(exitCode == 0, $"{fileName} {string.Join(' ', arguments)} exited with {exitCode}: {stderr}");
        return stdout;
    }

    /// <summary>A temporary directory removed when disposed.</summary>
    public sealed class TempDirectory : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("orthancseg-codec-").FullName;

        public string File(string name) => System.IO.Path.Combine(Path, name);

        public void Dispose() => Directory.Delete(Path, true);
    }
}
