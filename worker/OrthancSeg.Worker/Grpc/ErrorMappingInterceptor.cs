using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Grpc.Core.Interceptors;
using OrthancSeg.Worker.Errors;

namespace OrthancSeg.Worker.Grpc;

/// <summary>
/// The one place where exceptions become gRPC statuses (STYLE.md): handlers throw the domain exceptions of Errors/ and never
/// catch to translate, so a new RPC cannot answer a validation error as Internal. Invalid arguments carry a google.rpc.BadRequest
/// with every field; anything unexpected becomes Internal with a trace id to find it in the log, never its internals.
/// </summary>
internal sealed partial class ErrorMappingInterceptor(ILogger<ErrorMappingInterceptor> logger) : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation) =>
        MapAsync(context, () => continuation(request, context));

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation) =>
        MapAsync(context, () => continuation(requestStream, context));

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        MapAsync(context, async () =>
        {
            await continuation(request, responseStream, context);
            return true;
        });

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
        MapAsync(context, async () =>
        {
            await continuation(requestStream, responseStream, context);
            return true;
        });

    private async Task<T> MapAsync<T>(ServerCallContext context, Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (RpcException)
        {
            // Already a status (a handler, or a client call it made, that chose one deliberately).
            throw;
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            throw new RpcException(new global::Grpc.Core.Status(StatusCode.Cancelled, "The call was cancelled"));
        }
        catch (Exception e)
        {
            var traceId = context.GetHttpContext().TraceIdentifier;
            var exception = ToRpcException(e, traceId);
            if (exception.StatusCode == StatusCode.Internal)
            {
                LogFailed(logger, e, context.Method, traceId);
            }
            throw exception;
        }
    }

    /// <summary>
    /// The status a failure is answered with. Only exceptions whose message is written for the caller pass their message on;
    /// an ArgumentException from deep inside is a bug, not the caller's invalid argument, so it is Internal.
    /// </summary>
    internal static RpcException ToRpcException(Exception e, string traceId) => e switch
    {
        InvalidArgumentException invalid => InvalidArgument(invalid),
        NotFoundException => Plain(StatusCode.NotFound, e.Message),
        AlreadyExistsException => Plain(StatusCode.AlreadyExists, e.Message),
        FailedPreconditionException => Plain(StatusCode.FailedPrecondition, e.Message),
        // Requests a training backend can never run; their messages are written for the requester.
        Training.Slurm.SlurmRequestRefusedException or Training.Local.LocalRequestRefusedException => Plain(StatusCode.FailedPrecondition, e.Message),
        UnavailableException => Plain(StatusCode.Unavailable, e.Message),
        _ when Outage.DependencyOf(e) is { } dependency => Plain(StatusCode.Unavailable, $"{dependency} is unavailable: {e.Message}"),
        _ => Plain(StatusCode.Internal, $"Internal error; the worker log has the details under trace id {traceId}"),
    };

    private static RpcException Plain(StatusCode code, string message) => new(new global::Grpc.Core.Status(code, message));

    private static RpcException InvalidArgument(InvalidArgumentException e)
    {
        var badRequest = new BadRequest();
        badRequest.FieldViolations.AddRange(e.Problems.Select(p => new BadRequest.Types.FieldViolation { Field = p.Field, Description = p.Description }));
        return new Google.Rpc.Status
        {
            Code = (int)Code.InvalidArgument,
            Message = e.Message,
            Details = { Any.Pack(badRequest) },
        }.ToRpcException();
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "gRPC {Method} failed (trace id {TraceId})")]
    private static partial void LogFailed(ILogger logger, Exception exception, string method, string traceId);
}
