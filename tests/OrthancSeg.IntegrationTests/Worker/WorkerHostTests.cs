using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Reflection.V1Alpha;
using Npgsql;
using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Worker;

/// <summary>The built worker as a process, with Orthanc unreachable: what the gRPC surface answers.</summary>
[Collection(PostgresCollection.Name)]
public sealed class WorkerHostTests(WorkerProcess worker) : IClassFixture<WorkerProcess>
{
    [Fact]
    public async Task Health_is_serving_without_a_token_once_the_database_answers()
    {
        using var channel = worker.CreateChannel();

        var answer = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, answer.Status);
    }

    [Fact]
    public async Task The_worker_migrated_its_database_at_start_up()
    {
        await using var connection = new NpgsqlConnection(worker.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT name FROM schema_migrations WHERE version = 1", connection);

        Assert.Equal("foundation", await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task System_status_with_the_admin_token_reports_postgres_healthy_and_an_unreachable_orthanc_unhealthy()
    {
        using var channel = worker.CreateChannel();

        var status = await new SystemService.SystemServiceClient(channel).GetSystemStatusAsync(new GetSystemStatusRequest(), WorkerProcess.Bearer(worker.AdminToken));

        Assert.False(string.IsNullOrEmpty(status.WorkerVersion));
        Assert.InRange(status.StartedAt.ToDateTimeOffset(), DateTimeOffset.UtcNow.AddMinutes(-10), DateTimeOffset.UtcNow);
        var postgres = Assert.Single(status.Dependencies, d => d.Name == "postgresql");
        Assert.True(postgres.Healthy, postgres.Detail);
        Assert.StartsWith("PostgreSQL ", postgres.Detail, StringComparison.Ordinal);
        var orthanc = Assert.Single(status.Dependencies, d => d.Name == "orthanc");
        Assert.False(orthanc.Healthy);
        Assert.Contains("/system", orthanc.Detail, StringComparison.Ordinal);
        // A dependency that is down is reported, not fatal: the worker still serves.
        var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
    }

    [Fact]
    public async Task Admin_call_without_a_token_is_unauthenticated_and_says_which_roles_may_call()
    {
        using var channel = worker.CreateChannel();

        var error = await Assert.ThrowsAsync<RpcException>(() => new SystemService.SystemServiceClient(channel).GetSystemStatusAsync(new GetSystemStatusRequest()).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Contains("needs a token of role viewer, operator or admin", error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("authorization: Bearer <token>", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Admin_call_with_a_wrong_token_is_unauthenticated_and_does_not_echo_it()
    {
        using var channel = worker.CreateChannel();
        const string wrong = "not-the-admin-token-0123456789";

        var error = await Assert.ThrowsAsync<RpcException>(
            () => new SystemService.SystemServiceClient(channel).GetSystemStatusAsync(new GetSystemStatusRequest(), WorkerProcess.Bearer(wrong)).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.DoesNotContain(wrong, error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(worker.AdminToken, error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_bridge_token_is_refused_on_the_admin_service()
    {
        using var channel = worker.CreateChannel();

        var error = await Assert.ThrowsAsync<RpcException>(
            () => new SystemService.SystemServiceClient(channel).GetSystemStatusAsync(new GetSystemStatusRequest(), WorkerProcess.Bearer(worker.BridgeToken)).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.Contains("The token 'bridge' has the role bridge", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reflection_lists_the_admin_service_without_a_token()
    {
        using var channel = worker.CreateChannel();
        using var call = new ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo();

        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));

        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        Assert.Contains("orthancseg.v1.CaseService", services);
        Assert.Contains("grpc.health.v1.Health", services);
    }

    [Fact]
    public async Task The_endpoint_speaks_http2_only()
    {
        using var http = new HttpClient { DefaultRequestVersion = System.Net.HttpVersion.Version11, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };

        using var response = await http.GetAsync(new Uri(worker.Address));

        // Kestrel's own refusal of HTTP/1.x on an HTTP/2-only endpoint.
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("HTTP/2 only endpoint", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_log_file_named_in_the_configuration_is_written()
    {
        await ProcessRunner.WaitUntilAsync(() => Task.FromResult(File.Exists(worker.LogFile) && new FileInfo(worker.LogFile).Length > 0),
            TimeSpan.FromSeconds(10), $"{worker.LogFile} to be written");
    }
}
