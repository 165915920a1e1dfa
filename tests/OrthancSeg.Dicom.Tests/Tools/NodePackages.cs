namespace OrthancSeg.Dicom.Tests.Tools;

/// <summary>
/// npm packages installed once from the registry into a cache directory under /tmp (named by the packages),
/// so tests can run other projects' readers on our files without committing node_modules.
/// </summary>
internal static class NodePackages
{
    private static readonly Lock Gate = new();

    public static string Install(string name, params string[] packages)
    {
        var home = Path.Combine(Path.GetTempPath(), $"orthancseg-{name}");
        var marker = Path.Combine(home, ".installed");
        lock (Gate)
        {
            if (!File.Exists(marker))
            {
                Directory.CreateDirectory(home);
                File.WriteAllText(Path.Combine(home, "package.json"), """{"private": true, "type": "module"}""");
                var install = ExternalTool.Run("npm", ["install", "--no-audit", "--no-fund", .. packages], workingDirectory: home, timeout: TimeSpan.FromMinutes(8));
                Assert.True(install.ExitCode == 0, $"npm install {string.Join(' ', packages)} failed: {install.Error}");
                File.WriteAllText(marker, string.Join('\n', packages));
            }
        }
        return home;
    }
}
