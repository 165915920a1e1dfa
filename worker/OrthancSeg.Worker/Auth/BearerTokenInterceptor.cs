using Grpc.Core;
using Grpc.Core.Interceptors;

namespace OrthancSeg.Worker.Auth;

/// <summary>Applies <see cref="BearerTokenAuthenticator"/> to every call, whatever its streaming shape.</summary>
internal sealed partial class BearerTokenInterceptor(BearerTokenAuthenticator authenticator, ILogger<BearerTokenInterceptor> logger) : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(request, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(requestStream, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(request, responseStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(requestStream, responseStream, context);
    }

    private void Authorize(ServerCallContext context)
    {
        if (authenticator.Authorize(context.Method, context.RequestHeaders.GetValue("authorization")) is { } status)
        {
            LogRejected(logger, context.Method, context.Peer, status.StatusCode);
            throw new RpcException(status);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rejected {Method} from {Peer}: {StatusCode}")]
    private static partial void LogRejected(ILogger logger, string method, string peer, StatusCode statusCode);
}
