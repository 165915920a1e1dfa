using Grpc.Core;
using OrthancSeg.Worker.Auth;

namespace OrthancSeg.Worker.Tests.Auth;

public sealed class BearerTokenAuthenticatorTests
{
    private const string BridgeToken = "bridge-0123456789abcdef0123456789abcdef";
    private const string AdminToken = "admin-0123456789abcdef0123456789abcdef";
    private const string AdminMethod = "/orthancseg.v1.Admin/GetSystemStatus";
    private const string EventsMethod = "/orthancseg.v1.Events/NotifyStableSeries";

    private readonly BearerTokenAuthenticator _authenticator = new(BridgeToken, AdminToken);

    [Fact]
    public void The_admin_token_opens_the_admin_service()
    {
        Assert.Null(_authenticator.Authorize(AdminMethod, $"Bearer {AdminToken}"));
    }

    [Fact]
    public void The_bridge_token_opens_the_events_service()
    {
        Assert.Null(_authenticator.Authorize(EventsMethod, $"Bearer {BridgeToken}"));
    }

    [Fact]
    public void The_scheme_is_case_insensitive_as_in_http()
    {
        Assert.Null(_authenticator.Authorize(AdminMethod, $"bearer {AdminToken}"));
    }

    [Theory]
    [InlineData("/grpc.health.v1.Health/Check")]
    [InlineData("/grpc.health.v1.Health/Watch")]
    [InlineData("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")]
    [InlineData("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")]
    public void Health_and_reflection_need_no_token(string method)
    {
        Assert.Null(_authenticator.Authorize(method, null));
    }

    [Fact]
    public void A_missing_token_is_unauthenticated_and_the_message_names_the_expected_token()
    {
        var status = _authenticator.Authorize(AdminMethod, null);

        Assert.Equal(StatusCode.Unauthenticated, status?.StatusCode);
        Assert.Contains("No bearer token was sent", status?.Detail, StringComparison.Ordinal);
        Assert.Contains("admin token", status?.Detail, StringComparison.Ordinal);
        Assert.Contains("OrthancSeg:Auth:AdminTokenFile", status?.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_wrong_token_is_unauthenticated_and_never_echoed()
    {
        const string wrong = "guess-0123456789abcdef";

        var status = _authenticator.Authorize(EventsMethod, $"Bearer {wrong}");

        Assert.Equal(StatusCode.Unauthenticated, status?.StatusCode);
        Assert.Contains("OrthancSeg:Auth:BridgeTokenFile", status?.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, status?.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(BridgeToken, status?.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_token_that_differs_only_in_length_does_not_pass()
    {
        Assert.Equal(StatusCode.Unauthenticated, _authenticator.Authorize(AdminMethod, $"Bearer {AdminToken}x")?.StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, _authenticator.Authorize(AdminMethod, $"Bearer {AdminToken[..^1]}")?.StatusCode);
    }

    [Fact]
    public void The_bridge_token_on_the_admin_service_is_permission_denied()
    {
        var status = _authenticator.Authorize(AdminMethod, $"Bearer {BridgeToken}");

        Assert.Equal(StatusCode.PermissionDenied, status?.StatusCode);
        Assert.Contains("bridge token is not accepted", status?.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void The_admin_token_on_the_events_service_is_permission_denied()
    {
        Assert.Equal(StatusCode.PermissionDenied, _authenticator.Authorize(EventsMethod, $"Bearer {AdminToken}")?.StatusCode);
    }

    [Fact]
    public void A_service_without_a_policy_of_its_own_takes_the_admin_token()
    {
        Assert.Equal(StatusCode.Unauthenticated, _authenticator.Authorize("/orthancseg.v1.Future/Do", null)?.StatusCode);
        Assert.Null(_authenticator.Authorize("/orthancseg.v1.Future/Do", $"Bearer {AdminToken}"));
    }

    [Fact]
    public void Another_scheme_is_unauthenticated()
    {
        var status = _authenticator.Authorize(AdminMethod, "Basic YWRtaW46YWRtaW4=");

        Assert.Equal(StatusCode.Unauthenticated, status?.StatusCode);
        Assert.Contains("'Bearer <token>'", status?.Detail, StringComparison.Ordinal);
    }
}
