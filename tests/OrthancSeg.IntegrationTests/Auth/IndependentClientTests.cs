using System.Text.Json;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Auth;

/// <summary>
/// The worker as a client that has none of our code sees it (tests/grpc-client: Node's @grpc/grpc-js and grpc-reflection-js):
/// the services are found through reflection, a method's descriptors are fetched and used to encode the request, and the
/// answers (data, refusals, field details of an invalid argument) arrive in the standard gRPC forms.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class IndependentClientTests(WorkerProcess worker) : IClassFixture<WorkerProcess>
{
    [Fact]
    public async Task A_reflection_client_lists_the_services_resolves_a_method_and_reads_with_a_viewer_token()
    {
        if (!Directory.Exists(Path.Combine(RepositoryPaths.GrpcClient, "node_modules", "@grpc", "grpc-js")))
        {
            throw new InvalidOperationException($"@grpc/grpc-js is not installed in {RepositoryPaths.GrpcClient}: run `npm ci` there (make test does).");
        }
        var output = Path.Combine(Path.GetTempPath(), $"orthancseg-grpc-client-{Guid.NewGuid():N}.json");
        try
        {
            await ProcessRunner.RunAsync("node", [Path.Combine(RepositoryPaths.GrpcClient, "reflect-and-call.mjs"), worker.Address, worker.ViewerTokenFile,
                worker.AdminTokenFile, output], TimeSpan.FromSeconds(60), workingDirectory: RepositoryPaths.GrpcClient);
            var seen = JsonDocument.Parse(await File.ReadAllTextAsync(output)).RootElement;

            var services = seen.GetProperty("services").EnumerateArray().Select(s => s.GetString()).ToList();
            Assert.Contains("orthancseg.v1.CaseService", services);
            Assert.Contains("orthancseg.v1.AuditService", services);
            Assert.Contains("orthancseg.v1.Events", services);
            Assert.Contains("grpc.health.v1.Health", services);

            var method = seen.GetProperty("method");
            Assert.Equal(".orthancseg.v1.ListCasesRequest", method.GetProperty("requestType").GetString());
            Assert.Equal(".orthancseg.v1.ListCasesResponse", method.GetProperty("responseType").GetString());
            Assert.Contains("page_token", method.GetProperty("requestFields").EnumerateArray().Select(f => f.GetString()));

            var read = seen.GetProperty("viewerListCases");
            Assert.True(read.GetProperty("ok").GetBoolean(), read.ToString());
            Assert.Equal(JsonValueKind.Array, read.GetProperty("response").GetProperty("cases").ValueKind);

            Assert.Equal("UNAUTHENTICATED", seen.GetProperty("anonymousListCases").GetProperty("code").GetString());
            var denied = seen.GetProperty("viewerCreateWorkflow");
            Assert.Equal("PERMISSION_DENIED", denied.GetProperty("code").GetString());
            Assert.Contains("The token 'vera' has the role viewer", denied.GetProperty("message").GetString(), StringComparison.Ordinal);

            var invalid = seen.GetProperty("adminInvalidWorkflow");
            Assert.Equal("INVALID_ARGUMENT", invalid.GetProperty("code").GetString());
            var fields = invalid.GetProperty("fieldViolations").EnumerateArray().Select(v => v.GetProperty("field").GetString()).ToList();
            Assert.Contains("workflow.name", fields);
        }
        finally
        {
            File.Delete(output);
        }
    }
}
