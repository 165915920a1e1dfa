using System.Diagnostics;

namespace OrthancSeg.Dicom.Tests.Nifti;

/// <summary>Runs the real tools other programs use to read our files (Debian's python3 with nibabel, gzip).</summary>
internal static class ExternalTool
{
    /// <summary>Debian's interpreter: the python3 on PATH may be a pyenv build without nibabel/numpy.</summary>
    public const string Python = "/usr/bin/python3";

    public static string RunPython(string script, params string[] arguments) => Run(Python, ["-c", script, .. arguments]);

    /// <summary>Runs a program to completion (deadline one minute) and returns its stdout; a non-zero exit fails the test.</summary>
    public static string Run(string program, params string[] arguments)
    {
        var result = TryRun(program, arguments);
        Assert.True(result.ExitCode == 0, $"{program} {string.Join(' ', arguments.Where(a => !a.Contains('\n', StringComparison.Ordinal)))} exited with {result.ExitCode}:\n{result.Stderr}");
        return result.Stdout;
    }

    public static (int ExitCode, string Stdout, string Stderr) TryRun(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {program}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(1)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{program} did not finish within a minute");
        }
        return (process.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }
}
