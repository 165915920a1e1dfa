using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Worker;

/// <summary>A worker talking to a real Orthanc with basic authentication: everything healthy.</summary>
[Collection(PostgresCollection.Name)]
public sealed class WorkerWithOrthancTests(PostgresServer server) : IAsyncLifetime
{
    private readonly PlainOrthanc _orthanc = new();
    private WorkerProcess _worker = null!;

    public async Task InitializeAsync()
    {
        await _orthanc.InitializeAsync();
        _worker = await WorkerProcess.StartAsync(server, new Dictionary<string, string>
        {
            ["OrthancSeg:Orthanc:Url"] = _orthanc.Url,
            ["OrthancSeg:Orthanc:Username"] = _orthanc.Username,
            ["OrthancSeg:Orthanc:PasswordFile"] = _orthanc.PasswordFile,
        });
    }

    public async Task DisposeAsync()
    {
        if (_worker is not null)
        {
            await _worker.DisposeAsync();
        }
        await _orthanc.DisposeAsync();
    }

    [Fact]
    public async Task Status_reports_orthanc_version_through_the_api_and_the_cli_exits_0()
    {
        using var channel = _worker.CreateChannel();
        var status = await new Admin.AdminClient(channel).GetSystemStatusAsync(new GetSystemStatusRequest(), WorkerProcess.Bearer(_worker.AdminToken));
        var orthanc = Assert.Single(status.Dependencies, d => d.Name == "orthanc");
        Assert.True(orthanc.Healthy, orthanc.Detail);
        Assert.StartsWith("Orthanc 1.", orthanc.Detail, StringComparison.Ordinal);

        var cli = await CliProcess.RunAsync(["status", "--url", _worker.Address, "--token-file", _worker.AdminTokenFile]);

        Assert.True(cli.ExitCode == 0, cli.Stdout + cli.Stderr);
        Assert.Contains(cli.Stdout.Split('\n'), l => l.StartsWith("orthanc", StringComparison.Ordinal) && l.Contains(" healthy ", StringComparison.Ordinal));
    }
}
