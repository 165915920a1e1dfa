namespace OrthancSeg.Worker.Tests.Training;

/// <summary>Executable shell scripts written by the tests (fake tools, jobs that spawn grandchildren).</summary>
internal static class Scripts
{
    public static string Write(string path, string body)
    {
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        return path;
    }
}
