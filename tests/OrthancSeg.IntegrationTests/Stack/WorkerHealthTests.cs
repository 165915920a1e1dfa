using Grpc.Health.V1;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Stack;

[Collection(OrthancCollection.Name)]
public sealed class WorkerHealthTests(OrthancServer orthanc)
{
    [Fact]
    public async Task Worker_started_from_environment_configuration_answers_its_gRPC_health_check_as_serving()
    {
        await using var worker = await WorkerProcess.StartAsync(orthanc);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, await worker.CheckHealthAsync());
    }
}
