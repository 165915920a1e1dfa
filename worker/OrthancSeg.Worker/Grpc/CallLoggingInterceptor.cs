using System.Diagnostics;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Npgsql;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Orthanc;

namespace OrthancSeg.Worker.Grpc;

/// <summary>
/// The outermost interceptor: logs every call with its gRPC status and duration (Debug), and turns the
/// exceptions features throw into the status codes of STYLE.md, so a handler never has to catch to report.
/// Anything unexpected becomes Internal with a trace id to find it in the log, never its internals.
/// </summary>
internal sealed partial class CallLoggingInterceptor(ILogger<CallLoggingInterceptor> logger) : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, () => continuation(request, context));

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, () => continuation(requestStream, context));

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, async () =>
        {
            await continuation(request, responseStream, context);
            return true;
        });

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, async () =>
        {
            await continuation(requestStream, responseStream, context);
            return true;
        });

    private async Task<T> RunAsync<T>(ServerCallContext context, Func<Task<T>> call)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            var result = await call();
            Finished(context, StatusCode.OK, started);
            return result;
        }
        catch (RpcException e)
        {
            Finished(context, e.StatusCode, started);
            throw;
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            Finished(context, StatusCode.Cancelled, started);
            throw;
        }
        catch (Exception e)
        {
            var traceId = context.GetHttpContext().TraceIdentifier;
            var status = StatusFor(e, traceId);
            if (status.StatusCode == StatusCode.Internal)
            {
                LogFailed(logger, e, context.Method, traceId);
            }
            else
            {
                Finished(context, status.StatusCode, started);
            }
            throw new RpcException(status);
        }
    }

    private void Finished(ServerCallContext context, StatusCode statusCode, long started)
    {
        var elapsed = Stopwatch.GetElapsedTime(started);
        LogCall(logger, context.Method, statusCode, elapsed.TotalMilliseconds);
    }

    /// <summary>
    /// The status a failure is answered with. Only exceptions whose message is written for the caller pass their
    /// message on; an ArgumentException from deep inside is a bug, not the caller's invalid argument, so it is Internal.
    /// </summary>
    internal static global::Grpc.Core.Status StatusFor(Exception e, string traceId) => e switch
    {
        NotFoundException => new(StatusCode.NotFound, e.Message),
        FailedPreconditionException => new(StatusCode.FailedPrecondition, e.Message),
        OrthancException { IsUnavailable: true } => new(StatusCode.Unavailable, e.Message),
        NpgsqlException { IsTransient: true } => new(StatusCode.Unavailable, $"PostgreSQL is unavailable: {e.Message}"),
        _ => new(StatusCode.Internal, $"Internal error; the worker log has the details under trace id {traceId}"),
    };

    [LoggerMessage(Level = LogLevel.Debug, Message = "gRPC {Method} answered {StatusCode} in {ElapsedMs:0.0} ms")]
    private static partial void LogCall(ILogger logger, string method, StatusCode statusCode, double elapsedMs);

    [LoggerMessage(Level = LogLevel.Error, Message = "gRPC {Method} failed (trace id {TraceId})")]
    private static partial void LogFailed(ILogger logger, Exception exception, string method, string traceId);
}
