using System.Security.Cryptography;

namespace OrthancSeg.Dicom.Tests.Tools;

/// <summary>
/// Other projects' readers, installed from a fixture folder's committed package.json and package-lock.json with
/// <c>npm ci</c> into a cache directory under /tmp named by the lockfile's hash: every machine gets exactly the
/// versions the tests were written against, and node_modules stays out of the repository.
/// </summary>
internal static class NodePackages
{
    private static readonly Lock Gate = new();

    /// <summary>Returns the directory whose node_modules holds the packages of <c>Fixtures/&lt;fixture&gt;</c>.</summary>
    public static string Install(string fixture)
    {
        var manifest = Fixtures.Path(fixture, "package.json");
        var lockfile = Fixtures.Path(fixture, "package-lock.json");
        var hash = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(lockfile)))[..12];
        var home = Path.Combine(Path.GetTempPath(), $"orthancseg-node-{fixture}-{hash}");
        var marker = Path.Combine(home, ".installed");
        lock (Gate)
        {
            if (!File.Exists(marker))
            {
                Directory.CreateDirectory(home);
                File.Copy(manifest, Path.Combine(home, "package.json"), overwrite: true);
                File.Copy(lockfile, Path.Combine(home, "package-lock.json"), overwrite: true);
                var install = ExternalTool.Run("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], workingDirectory: home, timeout: TimeSpan.FromMinutes(8));
                Assert.True(install.ExitCode == 0, $"npm ci for Fixtures/{fixture} failed: {install.Error}");
                File.WriteAllText(marker, hash);
            }
        }
        return home;
    }
}
