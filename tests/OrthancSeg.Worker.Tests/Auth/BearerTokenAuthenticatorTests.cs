using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Auth;

namespace OrthancSeg.Worker.Tests.Auth;

public sealed class BearerTokenAuthenticatorTests
{
    private const string BridgeToken = "bridge-0123456789abcdef0123456789abcdef";
    private const string ViewerToken = "viewer-0123456789abcdef0123456789abcdef";
    private const string OperatorToken = "operator-0123456789abcdef0123456789abcdef";
    private const string AdminToken = "admin-0123456789abcdef0123456789abcdef";
    private const string ReadMethod = "/orthancseg.v1.CaseService/ListCases";
    private const string ExportMethod = "/orthancseg.v1.SnapshotService/ExportSnapshot";
    private const string WorkflowChange = "/orthancseg.v1.WorkflowService/CreateWorkflow";
    private const string EventsMethod = "/orthancseg.v1.Events/NotifyStableSeries";

    private readonly BearerTokenAuthenticator _authenticator = new(MethodPolicy.FromContracts(),
    [
        ("bridge", Role.Bridge, BridgeToken), ("carol", Role.Viewer, ViewerToken), ("olga", Role.Operator, OperatorToken), ("admin", Role.Admin, AdminToken),
    ]);

    [Theory]
    [InlineData(ViewerToken, "carol", Role.Viewer)]
    [InlineData(OperatorToken, "olga", Role.Operator)]
    [InlineData(AdminToken, "admin", Role.Admin)]
    public void Every_person_role_may_read_and_the_call_is_attributed_to_the_token_name(string token, string name, Role role)
    {
        var decision = _authenticator.Authorize(ReadMethod, $"Bearer {token}");

        Assert.Null(decision.Refusal);
        Assert.Equal(new Caller(name, role), decision.Caller);
        Assert.True(decision.Rule?.ReadOnly);
    }

    [Fact]
    public void An_export_needs_an_operator_and_is_not_read_only()
    {
        Assert.Equal(StatusCode.PermissionDenied, _authenticator.Authorize(ExportMethod, $"Bearer {ViewerToken}").Refusal?.StatusCode);
        var decision = _authenticator.Authorize(ExportMethod, $"Bearer {OperatorToken}");
        Assert.Null(decision.Refusal);
        Assert.False(decision.Rule?.ReadOnly);
        Assert.Null(_authenticator.Authorize(ExportMethod, $"Bearer {AdminToken}").Refusal);
    }

    [Fact]
    public void A_workflow_change_needs_an_admin_and_the_refusal_names_the_token_and_what_is_needed()
    {
        var refusal = _authenticator.Authorize(WorkflowChange, $"Bearer {OperatorToken}").Refusal;

        Assert.Equal(StatusCode.PermissionDenied, refusal?.StatusCode);
        Assert.Contains("The token 'olga' has the role operator", refusal?.Detail, StringComparison.Ordinal);
        Assert.Contains($"{WorkflowChange} needs a token of role admin", refusal?.Detail, StringComparison.Ordinal);
        Assert.Null(_authenticator.Authorize(WorkflowChange, $"Bearer {AdminToken}").Refusal);
    }

    [Fact]
    public void The_events_are_the_bridges_alone_and_the_bridge_does_nothing_else()
    {
        Assert.Null(_authenticator.Authorize(EventsMethod, $"Bearer {BridgeToken}").Refusal);
        Assert.Equal(StatusCode.PermissionDenied, _authenticator.Authorize(EventsMethod, $"Bearer {AdminToken}").Refusal?.StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, _authenticator.Authorize(ReadMethod, $"Bearer {BridgeToken}").Refusal?.StatusCode);
    }

    [Fact]
    public void The_scheme_is_case_insensitive_as_in_http()
    {
        Assert.Null(_authenticator.Authorize(ReadMethod, $"bearer {AdminToken}").Refusal);
    }

    [Theory]
    [InlineData("/grpc.health.v1.Health/Check")]
    [InlineData("/grpc.health.v1.Health/Watch")]
    [InlineData("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")]
    [InlineData("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")]
    public void Health_and_reflection_need_no_token(string method)
    {
        Assert.Null(_authenticator.Authorize(method, null).Refusal);
    }

    [Fact]
    public void A_missing_token_is_unauthenticated_and_the_message_names_the_roles_that_may_call()
    {
        var refusal = _authenticator.Authorize(ReadMethod, null).Refusal;

        Assert.Equal(StatusCode.Unauthenticated, refusal?.StatusCode);
        Assert.Contains("No bearer token was sent", refusal?.Detail, StringComparison.Ordinal);
        Assert.Contains("viewer, operator or admin", refusal?.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_wrong_token_is_unauthenticated_and_never_echoed()
    {
        const string wrong = "guess-0123456789abcdef";

        var decision = _authenticator.Authorize(EventsMethod, $"Bearer {wrong}");

        Assert.Equal(StatusCode.Unauthenticated, decision.Refusal?.StatusCode);
        Assert.Null(decision.Caller);
        Assert.Contains("OrthancSeg:Auth", decision.Refusal?.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, decision.Refusal?.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(BridgeToken, decision.Refusal?.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_token_that_differs_only_in_length_does_not_pass()
    {
        Assert.Equal(StatusCode.Unauthenticated, _authenticator.Authorize(ReadMethod, $"Bearer {AdminToken}x").Refusal?.StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, _authenticator.Authorize(ReadMethod, $"Bearer {AdminToken[..^1]}").Refusal?.StatusCode);
    }

    [Fact]
    public void A_method_outside_the_contract_needs_an_admin_token()
    {
        Assert.Equal(StatusCode.Unauthenticated, _authenticator.Authorize("/orthancseg.v1.Future/Do", null).Refusal?.StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, _authenticator.Authorize("/orthancseg.v1.Future/Do", $"Bearer {OperatorToken}").Refusal?.StatusCode);
        Assert.Null(_authenticator.Authorize("/orthancseg.v1.Future/Do", $"Bearer {AdminToken}").Refusal);
    }

    [Fact]
    public void Another_scheme_is_unauthenticated()
    {
        var refusal = _authenticator.Authorize(ReadMethod, "Basic YWRtaW46YWRtaW4=").Refusal;

        Assert.Equal(StatusCode.Unauthenticated, refusal?.StatusCode);
        Assert.Contains("'Bearer <token>'", refusal?.Detail, StringComparison.Ordinal);
    }
}
