using Grpc.Health.V1;
using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Stack;

[Collection(OrthancCollection.Name)]
public sealed class WorkerHealthTests(OrthancServer orthanc)
{
    [Fact]
    public async Task Worker_wired_to_the_stacks_Orthanc_serves_its_health_check_and_sees_Orthanc_healthy()
    {
        // The settings `make up` gives the worker, pointed at an Orthanc configured from the stack's template.
        await using var worker = await WorkerProcess.StartAsync(orthanc.Postgres, new Dictionary<string, string>
        {
            ["OrthancSeg:Orthanc:Url"] = orthanc.BaseUrl.ToString().TrimEnd('/'),
            ["OrthancSeg:Orthanc:Username"] = OrthancServer.Username,
            ["OrthancSeg:Orthanc:PasswordFile"] = orthanc.PasswordFile,
        });
        using var channel = worker.CreateChannel();

        var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);

        var status = await new Admin.AdminClient(channel).GetSystemStatusAsync(new GetSystemStatusRequest(), WorkerProcess.Bearer(worker.AdminToken));
        var orthancStatus = Assert.Single(status.Dependencies, d => d.Name == "orthanc");
        Assert.True(orthancStatus.Healthy, orthancStatus.Detail);
    }
}
