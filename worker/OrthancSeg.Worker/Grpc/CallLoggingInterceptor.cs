using System.Diagnostics;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace OrthancSeg.Worker.Grpc;

/// <summary>
/// The outermost interceptor: logs every call with its gRPC status and duration (Debug). Exceptions have become
/// statuses inside it, in <see cref="ErrorMappingInterceptor"/>.
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
    }

    private void Finished(ServerCallContext context, StatusCode statusCode, long started)
    {
        var elapsed = Stopwatch.GetElapsedTime(started);
        LogCall(logger, context.Method, statusCode, elapsed.TotalMilliseconds);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "gRPC {Method} answered {StatusCode} in {ElapsedMs:0.0} ms")]
    private static partial void LogCall(ILogger logger, string method, StatusCode statusCode, double elapsedMs);
}
