using System.Reflection;
using System.Text.Json;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Health.V1;
using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Auth;

/// <summary>
/// Every method of every orthancseg.v1 service, called on a running worker with no token, a wrong token and each role's token:
/// exactly the roles its contract allows get past authentication and authorisation (the call may then fail on its empty request,
/// which counts as passing). The expected roles come from the .proto option, and a few are spelled out, so neither the server's
/// reading of the option nor the option itself can drift unnoticed.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class AccessMatrixTests(WorkerProcess worker) : IClassFixture<WorkerProcess>
{
    private static readonly Marshaller<byte[]> Bytes = Marshallers.Create(b => b, b => b);

    public static TheoryData<string> Methods()
    {
        var data = new TheoryData<string>();
        foreach (var method in ContractServices().SelectMany(s => s.Methods))
        {
            data.Add($"/{method.Service.FullName}/{method.Name}");
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task Exactly_the_roles_the_contract_allows_pass_and_everyone_else_is_refused(string path)
    {
        var method = ContractServices().SelectMany(s => s.Methods).Single(m => $"/{m.Service.FullName}/{m.Name}" == path);
        var required = method.GetOptions().GetExtension(OptionsExtensions.MinimumRole);
        using var channel = worker.CreateChannel();

        Assert.Equal(StatusCode.Unauthenticated, await CallAsync(channel, method, null));
        Assert.Equal(StatusCode.Unauthenticated, await CallAsync(channel, method, "not-a-token-0123456789abcdef"));
        foreach (var (role, token) in new[]
        {
            (Role.Bridge, worker.BridgeToken), (Role.Viewer, worker.ViewerToken), (Role.Operator, worker.OperatorToken), (Role.Admin, worker.AdminToken),
        })
        {
            var code = await CallAsync(channel, method, token);
            var allowed = required == Role.Bridge || role == Role.Bridge ? role == required : role >= required;
            if (allowed)
            {
                Assert.True(code is not (StatusCode.Unauthenticated or StatusCode.PermissionDenied or StatusCode.Internal or StatusCode.Unimplemented),
                    $"{path} with the {role} token answered {code}; that role is allowed, so it should reach the method");
            }
            else
            {
                Assert.True(code == StatusCode.PermissionDenied, $"{path} with the {role} token answered {code}; expected PermissionDenied");
            }
        }
    }

    [Fact]
    public void The_declared_roles_are_the_ones_the_issue_asks_for()
    {
        var roles = ContractServices().SelectMany(s => s.Methods)
            .ToDictionary(m => $"{m.Service.Name}/{m.Name}", m => m.GetOptions().GetExtension(OptionsExtensions.MinimumRole));

        Assert.Equal(Role.Bridge, roles["Events/NotifyStableSeries"]);
        Assert.Equal(Role.Bridge, roles["Events/NotifySegmentationStored"]);
        Assert.Equal(Role.Viewer, roles["CaseService/ListCases"]);
        Assert.Equal(Role.Operator, roles["CaseService/ExcludeCase"]);
        Assert.Equal(Role.Operator, roles["CaseService/IncludeCase"]);
        Assert.Equal(Role.Viewer, roles["JobService/ListJobs"]);
        Assert.Equal(Role.Operator, roles["SnapshotService/ExportSnapshot"]);
        Assert.Equal(Role.Operator, roles["TrainingService/StartTraining"]);
        Assert.Equal(Role.Admin, roles["WorkflowService/CreateWorkflow"]);
        Assert.Equal(Role.Admin, roles["WorkflowService/UpdateWorkflow"]);
        Assert.Equal(Role.Admin, roles["JobService/RetryDeadLetter"]);
        Assert.Equal(Role.Admin, roles["JobService/DiscardDeadLetter"]);
        Assert.Equal(Role.Viewer, roles["LabelService/GetLabel"]);
        Assert.Equal(Role.Viewer, roles["SystemService/GetSystemStatus"]);
        Assert.DoesNotContain(roles.Keys, k => k.StartsWith("Admin/", StringComparison.Ordinal));
        Assert.Equal(Role.Admin, roles["AuditService/ListAuditEntries"]);
    }

    [Fact]
    public async Task Health_answers_without_a_token()
    {
        using var channel = worker.CreateChannel();

        var answer = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, answer.Status);
    }

    [Fact]
    public async Task A_change_made_with_the_operator_token_is_in_the_audit_list_with_the_token_name()
    {
        using var channel = worker.CreateChannel();
        await new WorkflowService.WorkflowServiceClient(channel).CreateWorkflowAsync(new CreateWorkflowRequest
        {
            Workflow = new Workflow { Name = "audit-ct", DatasetId = 41, Selection = new SelectionRule { Modality = "CT" }, Labels = { new LabelDefinition { Value = 1, Name = "liver" } } },
        }, WorkerProcess.Bearer(worker.AdminToken));

        var export = await new SnapshotService.SnapshotServiceClient(channel).ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "audit-ct" }, WorkerProcess.Bearer(worker.OperatorToken));
        var refused = await Assert.ThrowsAsync<RpcException>(() =>
            new WorkflowService.WorkflowServiceClient(channel).PauseWorkflowAsync(new PauseWorkflowRequest { Name = "audit-ct" }, WorkerProcess.Bearer(worker.OperatorToken)).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);

        var result = await CliProcess.RunAsync(["audit", "list", "--token", "olga", "--json", "--url", worker.Address, "--token-file", worker.AdminTokenFile]);

        Assert.True(result.ExitCode == 0, result.Stderr);
        var entries = JsonDocument.Parse(result.Stdout).RootElement.EnumerateArray().ToList();
        var exported = Assert.Single(entries, e => e.GetProperty("method").GetString() == "/orthancseg.v1.SnapshotService/ExportSnapshot" && e.GetProperty("resource").GetString() == "workflow=audit-ct");
        Assert.Equal("olga", exported.GetProperty("tokenName").GetString());
        Assert.Equal("operator", exported.GetProperty("role").GetString());
        Assert.Equal("OK", exported.GetProperty("statusCode").GetString());
        var paused = Assert.Single(entries, e => e.GetProperty("method").GetString() == "/orthancseg.v1.WorkflowService/PauseWorkflow" && e.GetProperty("resource").GetString() == "name=audit-ct");
        Assert.Equal("PERMISSION_DENIED", paused.GetProperty("statusCode").GetString());
        Assert.True(export.Snapshot.Id > 0);

        // The admin's own change is listed under its name, and reads are not recorded at all.
        var admin = await new AuditService.AuditServiceClient(channel).ListAuditEntriesAsync(
            new ListAuditEntriesRequest { TokenName = "admin", Method = "CreateWorkflow" }, WorkerProcess.Bearer(worker.AdminToken));
        Assert.Contains(admin.Entries, e => e.Resource == "workflow.name=audit-ct, workflow.dataset_id=41" && e.StatusCode == "OK" && e.Role == Role.Admin);
        var reads = await new AuditService.AuditServiceClient(channel).ListAuditEntriesAsync(
            new ListAuditEntriesRequest { Method = "ListCases" }, WorkerProcess.Bearer(worker.AdminToken));
        Assert.Empty(reads.Entries);
    }

    [Fact]
    public async Task The_audit_list_pages_with_opaque_tokens_and_the_viewer_may_not_read_it()
    {
        using var channel = worker.CreateChannel();
        var jobs = new JobService.JobServiceClient(channel);
        for (var i = 0; i < 5; i++)
        {
            await Assert.ThrowsAsync<RpcException>(() => jobs.RetryDeadLetterAsync(new RetryDeadLetterRequest { Id = 900_000 + i }, WorkerProcess.Bearer(worker.AdminToken)).ResponseAsync);
        }
        var audit = new AuditService.AuditServiceClient(channel);

        var seen = new List<AuditEntry>();
        var request = new ListAuditEntriesRequest { Method = "/orthancseg.v1.JobService/RetryDeadLetter", TokenName = "admin", PageSize = 2 };
        do
        {
            var page = await audit.ListAuditEntriesAsync(request, WorkerProcess.Bearer(worker.AdminToken));
            Assert.True(page.Entries.Count <= 2);
            seen.AddRange(page.Entries);
            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0);

        var ours = seen.Where(e => e.Resource.StartsWith("id=9000", StringComparison.Ordinal)).ToList();
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"id={900_004 - i}"), ours.Select(e => e.Resource));
        Assert.All(ours, e => Assert.Equal("NOT_FOUND", e.StatusCode));
        Assert.Equal(seen.Count, seen.Select(e => e.Id).Distinct().Count());
        var denied = await Assert.ThrowsAsync<RpcException>(() => audit.ListAuditEntriesAsync(new ListAuditEntriesRequest(), WorkerProcess.Bearer(worker.ViewerToken)).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
    }

    private static async Task<StatusCode> CallAsync(global::Grpc.Net.Client.GrpcChannel channel, MethodDescriptor method, string? token)
    {
        var headers = token is null ? new Metadata() : WorkerProcess.Bearer(token);
        var options = new CallOptions(headers, DateTime.UtcNow.AddSeconds(10));
        var invoker = channel.CreateCallInvoker();
        try
        {
            if (method.IsServerStreaming)
            {
                var definition = new Method<byte[], byte[]>(MethodType.ServerStreaming, method.Service.FullName, method.Name, Bytes, Bytes);
                using var stream = invoker.AsyncServerStreamingCall(definition, null, options, []);
                await stream.ResponseStream.MoveNext(CancellationToken.None);
            }
            else
            {
                var definition = new Method<byte[], byte[]>(MethodType.Unary, method.Service.FullName, method.Name, Bytes, Bytes);
                await invoker.AsyncUnaryCall(definition, null, options, []);
            }
            return StatusCode.OK;
        }
        catch (RpcException e)
        {
            return e.StatusCode;
        }
    }

    /// <summary>The services of orthancseg.v1 as this test project's own generated code describes them.</summary>
    private static IEnumerable<ServiceDescriptor> ContractServices() =>
        typeof(OptionsReflection).Assembly.GetTypes()
            .Where(t => t.Namespace == typeof(OptionsReflection).Namespace && t.IsAbstract && t.IsSealed && t.Name.EndsWith("Reflection", StringComparison.Ordinal))
            .Select(t => t.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static)?.GetValue(null))
            .OfType<FileDescriptor>()
            .SelectMany(f => f.Services);
}
