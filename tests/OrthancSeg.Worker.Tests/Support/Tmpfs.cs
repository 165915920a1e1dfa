using System.Diagnostics;

namespace OrthancSeg.Tests.Support;

/// <summary>
/// A small tmpfs mounted on a fresh folder (as root: mount -t tmpfs -o size=…), unmounted and removed on dispose: a real
/// filesystem that runs out of space. Mounting needs root, which the tests run as; anything else is a failure, never a skip.
/// </summary>
internal sealed class Tmpfs : IDisposable
{
    private Tmpfs(string path) => Path = path;

    public string Path { get; }

    public static Tmpfs Mount(int megabytes)
    {
        var path = Directory.CreateTempSubdirectory("orthancseg-tmpfs-").FullName;
        try
        {
            Run("/usr/bin/mount", "-t", "tmpfs", "-o", $"size={megabytes}m", "tmpfs", path);
        }
        catch
        {
            Directory.Delete(path);
            throw;
        }
        return new Tmpfs(path);
    }

    public void Dispose()
    {
        // Lazy unmount: a file still open in a process the test started must not leave the mount behind.
        Run("/usr/bin/umount", "-l", Path);
        Directory.Delete(Path);
    }

    private static void Run(string program, params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(program, arguments) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed ({process.ExitCode}): {error} (the disk tests need root)");
        }
    }
}
