using Grpc.Core;
using Npgsql;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Grpc;
using OrthancSeg.Worker.Orthanc;

namespace OrthancSeg.Worker.Tests.Grpc;

public sealed class CallLoggingInterceptorTests
{
    [Fact]
    public void A_missing_resource_is_not_found_with_its_message()
    {
        var status = CallLoggingInterceptor.StatusFor(new NotFoundException("Job 7 does not exist"), "trace-1");

        Assert.Equal(new global::Grpc.Core.Status(StatusCode.NotFound, "Job 7 does not exist"), status);
    }

    [Fact]
    public void A_wrong_state_is_a_failed_precondition()
    {
        Assert.Equal(StatusCode.FailedPrecondition, CallLoggingInterceptor.StatusFor(new FailedPreconditionException("job is queued"), "t").StatusCode);
    }

    [Fact]
    public void Orthanc_not_answering_is_unavailable_but_a_refusal_is_internal()
    {
        var down = new OrthancException("Orthanc GET http://x/system failed: Connection refused", null);
        var refused = new OrthancException("Orthanc GET http://x/system answered 401 Unauthorized", System.Net.HttpStatusCode.Unauthorized);

        Assert.Equal(StatusCode.Unavailable, CallLoggingInterceptor.StatusFor(down, "t").StatusCode);
        Assert.Equal(StatusCode.Internal, CallLoggingInterceptor.StatusFor(refused, "t").StatusCode);
    }

    [Fact]
    public void PostgreSQL_not_answering_is_unavailable()
    {
        var down = new NpgsqlException("Failed to connect to 127.0.0.1:5432", new System.Net.Sockets.SocketException(111));

        Assert.Equal(StatusCode.Unavailable, CallLoggingInterceptor.StatusFor(down, "t").StatusCode);
    }

    [Fact]
    public void Anything_else_is_internal_with_the_trace_id_and_without_the_internals()
    {
        var status = CallLoggingInterceptor.StatusFor(new InvalidOperationException("secret connection string Password=hunter2"), "trace-42");

        Assert.Equal(StatusCode.Internal, status.StatusCode);
        Assert.Contains("trace-42", status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", status.Detail, StringComparison.Ordinal);
    }
}
