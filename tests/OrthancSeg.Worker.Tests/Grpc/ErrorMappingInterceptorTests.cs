using Google.Rpc;
using Grpc.Core;
using Npgsql;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Grpc;
using OrthancSeg.Worker.Orthanc;

namespace OrthancSeg.Worker.Tests.Grpc;

public sealed class ErrorMappingInterceptorTests
{
    [Fact]
    public void A_missing_resource_is_not_found_with_its_message()
    {
        var status = ErrorMappingInterceptor.ToRpcException(new NotFoundException("Job 7 does not exist"), "trace-1").Status;

        Assert.Equal(new global::Grpc.Core.Status(StatusCode.NotFound, "Job 7 does not exist"), status);
    }

    [Theory]
    [InlineData("slurm")]
    [InlineData("local")]
    public void A_training_request_a_backend_can_never_run_is_failed_precondition_with_the_reason(string backend)
    {
        const string reason = "3 GPU(s) asked but this machine has 2 (0, 1)";
        Exception refusal = backend == "slurm"
            ? new OrthancSeg.Worker.Training.Slurm.SlurmRequestRefusedException(reason)
            : new OrthancSeg.Worker.Training.Local.LocalRequestRefusedException(reason);

        var status = ErrorMappingInterceptor.ToRpcException(refusal, "trace-1").Status;

        Assert.Equal(new global::Grpc.Core.Status(StatusCode.FailedPrecondition, reason), status);
    }

    [Fact]
    public void Invalid_fields_are_invalid_argument_with_every_field_in_a_bad_request_detail()
    {
        var error = ErrorMappingInterceptor.ToRpcException(new InvalidArgumentException(
            [new("workflow.name", "is required"), new("workflow.labels[0].value", "0 is the background")]), "t");

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal("workflow.name: is required; workflow.labels[0].value: 0 is the background", error.Status.Detail);
        var badRequest = error.GetRpcStatus()?.GetDetail<BadRequest>() ?? throw new Xunit.Sdk.XunitException("no BadRequest detail");
        Assert.Equal(["workflow.name", "workflow.labels[0].value"], badRequest.FieldViolations.Select(v => v.Field));
        Assert.Equal("0 is the background", badRequest.FieldViolations[1].Description);
    }

    [Fact]
    public void A_duplicate_is_already_exists_and_a_wrong_state_a_failed_precondition()
    {
        Assert.Equal(StatusCode.AlreadyExists, ErrorMappingInterceptor.ToRpcException(new AlreadyExistsException("Workflow 'liver-ct' already exists"), "t").StatusCode);
        Assert.Equal(StatusCode.FailedPrecondition, ErrorMappingInterceptor.ToRpcException(new FailedPreconditionException("job is queued"), "t").StatusCode);
    }

    [Fact]
    public void Orthanc_not_answering_is_unavailable_but_a_refusal_is_internal()
    {
        var down = new OrthancException("Orthanc GET http://x/system failed: Connection refused", null);
        var refused = new OrthancException("Orthanc GET http://x/system answered 401 Unauthorized", System.Net.HttpStatusCode.Unauthorized);

        Assert.Equal(StatusCode.Unavailable, ErrorMappingInterceptor.ToRpcException(down, "t").StatusCode);
        Assert.Equal(StatusCode.Internal, ErrorMappingInterceptor.ToRpcException(refused, "t").StatusCode);
    }

    [Fact]
    public void A_dependency_that_is_down_is_unavailable()
    {
        var postgres = new NpgsqlException("Failed to connect to 127.0.0.1:5432", new System.Net.Sockets.SocketException(111));

        Assert.Equal(StatusCode.Unavailable, ErrorMappingInterceptor.ToRpcException(postgres, "t").StatusCode);
        Assert.Equal(StatusCode.Unavailable, ErrorMappingInterceptor.ToRpcException(new UnavailableException("Slurm", "sbatch is not answering"), "t").StatusCode);
    }

    [Fact]
    public void Anything_else_is_internal_with_the_trace_id_and_without_the_internals()
    {
        var status = ErrorMappingInterceptor.ToRpcException(new InvalidOperationException("secret connection string Password=hunter2"), "trace-42").Status;

        Assert.Equal(StatusCode.Internal, status.StatusCode);
        Assert.Contains("trace-42", status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_argument_exception_from_inside_is_a_bug_and_internal_not_the_callers_invalid_argument()
    {
        Assert.Equal(StatusCode.Internal, ErrorMappingInterceptor.ToRpcException(new ArgumentException("index must be positive"), "t").StatusCode);
    }

    [Fact]
    public void Every_domain_error_in_Errors_maps_to_its_own_status_never_internal()
    {
        // A new exception type added to Errors/ without a mapping would silently answer Internal: this catches it.
        var types = typeof(NotFoundException).Assembly.GetTypes()
            .Where(t => t.Namespace == typeof(NotFoundException).Namespace && typeof(Exception).IsAssignableFrom(t))
            .ToList();
        Assert.True(types.Count >= 5, $"found only {string.Join(", ", types.Select(t => t.Name))}");
        foreach (var type in types)
        {
            // The message-only constructor (InvalidArgumentException: field and description).
            var constructor = type.GetConstructors().First(c => c.GetParameters().All(p => p.ParameterType == typeof(string) || p.ParameterType == typeof(Exception)));
            var arguments = constructor.GetParameters().Select(p => p.ParameterType == typeof(string) ? "what went wrong" : (object?)null).ToArray();
            var exception = (Exception)constructor.Invoke(arguments);

            var status = ErrorMappingInterceptor.ToRpcException(exception, "t").Status;

            Assert.NotEqual(StatusCode.Internal, status.StatusCode);
            Assert.Contains("what went wrong", status.Detail, StringComparison.Ordinal);
        }
    }
}
