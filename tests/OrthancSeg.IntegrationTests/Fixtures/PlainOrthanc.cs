using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>
/// A bare Orthanc from the installed package (no plugins, SQLite index in a temporary directory, DICOM off),
/// with HTTP basic authentication on: enough for tests that only need its REST API.
/// </summary>
public sealed class PlainOrthanc : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "orthancseg-orthanc-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly ConcurrentQueue<string> _output = new();
    private Process? _process;

    public int Port { get; } = ProcessRunner.FreePort();

    public string Url => $"http://127.0.0.1:{Port}";

    public string Username { get; } = "orthancseg";

    public string Password { get; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    public string PasswordFile => Path.Combine(_directory, "orthanc-password");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        await WorkerProcess.WriteSecretAsync(PasswordFile, Password);
        var configuration = Path.Combine(_directory, "orthanc.json");
        await File.WriteAllTextAsync(configuration, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["Name"] = "OrthancSegTest",
            ["StorageDirectory"] = Path.Combine(_directory, "storage"),
            ["IndexDirectory"] = Path.Combine(_directory, "storage"),
            ["HttpPort"] = Port,
            ["DicomServerEnabled"] = false,
            ["DicomPort"] = ProcessRunner.FreePort(),
            ["RemoteAccessAllowed"] = false,
            ["AuthenticationEnabled"] = true,
            ["RegisteredUsers"] = new Dictionary<string, string> { [Username] = Password },
            ["Plugins"] = Array.Empty<string>(),
        }));

        var info = new ProcessStartInfo("Orthanc")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _directory,
        };
        info.ArgumentList.Add(configuration);
        _process = Process.Start(info) ?? throw new InvalidOperationException("Could not start Orthanc (apt-get install orthanc)");
        _process.OutputDataReceived += (_, e) => Collect(e.Data);
        _process.ErrorDataReceived += (_, e) => Collect(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Username}:{Password}")));
        await ProcessRunner.WaitUntilAsync(async () =>
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"Orthanc exited with code {_process.ExitCode}:\n{string.Join('\n', _output)}");
            }
            try
            {
                using var response = await http.GetAsync(new Uri($"{Url}/system"));
                return response.IsSuccessStatusCode;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), $"Orthanc at {Url} to answer /system");
    }

    public async Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private void Collect(string? line)
    {
        if (line is not null)
        {
            _output.Enqueue(line);
        }
    }
}
