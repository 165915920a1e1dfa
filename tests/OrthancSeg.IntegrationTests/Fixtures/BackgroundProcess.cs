using System.Diagnostics;
using System.Globalization;

namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>
/// A server the fixtures start and own: its output goes to a log file (shown when it fails to come
/// up), and disposing stops it with SIGTERM, then kills its whole tree, so no process outlives the tests.
/// </summary>
internal sealed class BackgroundProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;

    private BackgroundProcess(Process process, string logPath, StreamWriter log)
    {
        _process = process;
        LogPath = logPath;
        _log = log;
    }

    public string LogPath { get; }

    public bool HasExited => _process.HasExited;

    public int Id => _process.Id;

    public static BackgroundProcess Start(string fileName, IEnumerable<string> arguments, string logPath,
        IDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetDirectoryName(logPath)!,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        var log = new StreamWriter(logPath, append: true) { AutoFlush = true };
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => Write(log, e.Data);
        process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        if (!process.Start())
        {
            throw new InvalidOperationException($"Could not start {fileName}");
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new BackgroundProcess(process, logPath, log);
    }

    /// <summary>The last lines of the log, for failure messages.</summary>
    public string LogTail(int lines = 40) => string.Join('\n', ReadLog().Split('\n').TakeLast(lines));

    /// <summary>Everything the process printed so far.</summary>
    public string ReadLog()
    {
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
        catch (IOException exception)
        {
            return $"(log {LogPath} unreadable: {exception.Message})";
        }
    }

    /// <summary>SIGKILL to the whole tree, as a crash or the OOM killer would end it: no shutdown, nothing flushed.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    /// <summary>Waits for <paramref name="ready"/>, failing early with the log if the process dies.</summary>
    public async Task WaitUntilReadyAsync(Func<Task<bool>> ready, TimeSpan timeout, string what)
    {
        try
        {
            await ProcessRunner.WaitUntilAsync(async () =>
            {
                if (_process.HasExited)
                {
                    throw new InvalidOperationException($"{what} exited with code {_process.ExitCode} while starting. Log {LogPath}:\n{LogTail()}");
                }
                return await ready();
            }, timeout, what);
        }
        catch (TimeoutException exception)
        {
            throw new TimeoutException($"{exception.Message}. Log {LogPath}:\n{LogTail()}", exception);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            try
            {
                // A polite stop first: Orthanc and nginx clean up their children and files on SIGTERM.
                await ProcessRunner.RunAsync("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10));
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (Exception exception) when (exception is OperationCanceledException or InvalidOperationException)
            {
                // Did not stop in time, or was already gone: whatever is left of the tree goes.
            }
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        _process.Dispose();
        await _log.DisposeAsync();
    }

    private static void Write(StreamWriter log, string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (log)
        {
            log.WriteLine(line);
        }
    }
}
