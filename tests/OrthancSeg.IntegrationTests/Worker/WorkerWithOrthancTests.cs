using Grpc.Health.V1;
using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Worker;

/// <summary>
/// The worker with the settings `make up` gives it, pointed at an Orthanc configured from the stack's
/// template: health SERVING, Orthanc healthy through the API, and the CLI's status exits 0.
/// </summary>
[Collection(OrthancCollection.Name)]
public sealed class WorkerWithOrthancTests(OrthancServer orthanc) : IAsyncLifetime
{
    private WorkerProcess _worker = null!;

    public async Task InitializeAsync() =>
        _worker = await WorkerProcess.StartAsync(orthanc.Postgres, new Dictionary<string, string>
        {
            ["OrthancSeg:Orthanc:Url"] = orthanc.BaseUrl.ToString().TrimEnd('/'),
            ["OrthancSeg:Orthanc:Username"] = OrthancServer.Username,
            ["OrthancSeg:Orthanc:PasswordFile"] = orthanc.PasswordFile,
        });

    public async Task DisposeAsync()
    {
        if (_worker is not null)
        {
            await _worker.DisposeAsync();
        }
    }

    [Fact]
    public async Task Health_is_serving_and_status_reports_orthancs_version_through_the_api_and_the_cli_exits_0()
    {
        using var channel = _worker.CreateChannel();
        var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);

        var status = await new SystemService.SystemServiceClient(channel).GetSystemStatusAsync(new GetSystemStatusRequest(), WorkerProcess.Bearer(_worker.AdminToken));
        var orthancStatus = Assert.Single(status.Dependencies, d => d.Name == "orthanc");
        Assert.True(orthancStatus.Healthy, orthancStatus.Detail);
        Assert.StartsWith("Orthanc 1.", orthancStatus.Detail, StringComparison.Ordinal);

        var cli = await CliProcess.RunAsync(["status", "--url", _worker.Address, "--token-file", _worker.AdminTokenFile]);

        Assert.True(cli.ExitCode == 0, cli.Stdout + cli.Stderr);
        Assert.Contains(cli.Stdout.Split('\n'), l => l.StartsWith("orthanc", StringComparison.Ordinal) && l.Contains(" healthy ", StringComparison.Ordinal));
    }
}
