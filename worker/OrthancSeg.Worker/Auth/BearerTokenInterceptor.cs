using Grpc.Core;
using Grpc.Core.Interceptors;
using OrthancSeg.Worker.Audit;
using OrthancSeg.Worker.Grpc;

namespace OrthancSeg.Worker.Auth;

/// <summary>
/// Applies <see cref="BearerTokenAuthenticator"/> to every call, whatever its streaming shape, and records every call that changes
/// something (a method not declared NO_SIDE_EFFECTS) in the audit log: a row before the call runs, so that nothing changes
/// unrecorded (a call whose row cannot be written is refused), completed with the status it ended with. It sits outside
/// <see cref="ErrorMappingInterceptor"/>, so the status it records is the one the caller receives.
/// </summary>
internal sealed partial class BearerTokenInterceptor(BearerTokenAuthenticator authenticator, AuditLog audit, ILogger<BearerTokenInterceptor> logger)
    : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(request, context, () => continuation(request, context));

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(null, context, () => continuation(requestStream, context));

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(request, context, async () =>
        {
            await continuation(request, responseStream, context);
            return true;
        });

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(null, context, async () =>
        {
            await continuation(requestStream, responseStream, context);
            return true;
        });

    private static readonly object CallerKey = typeof(Caller);

    /// <summary>Who made the call, for a method that records it (ExcludeCase keeps the token's name); only for methods that need a token.</summary>
    public static Caller CallerOf(ServerCallContext context) =>
        context.UserState.TryGetValue(CallerKey, out var caller) && caller is Caller found ? found
            : throw new InvalidOperationException($"{context.Method} ran without an authenticated caller");

    private async Task<T> RunAsync<T>(object? request, ServerCallContext context, Func<Task<T>> call)
    {
        var decision = authenticator.Authorize(context.Method, context.RequestHeaders.GetValue("authorization"));
        var audited = decision is { Caller: not null, Rule.ReadOnly: false };
        if (decision.Refusal is { } refusal)
        {
            LogRejected(logger, context.Method, context.Peer, refusal.StatusCode, decision.Caller?.TokenName);
            if (audited)
            {
                // A known token trying what its role does not allow is worth keeping; a failure to keep it does not let the call in.
                try
                {
                    await audit.RefusedAsync(decision.Caller!, context.Method, AuditResource.Of(request), context.Peer, refusal.StatusCode, refusal.Detail,
                        context.CancellationToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogAuditFailed(logger, e, context.Method);
                }
            }
            throw new RpcException(refusal);
        }
        if (decision.Caller is { } caller)
        {
            context.UserState[CallerKey] = caller;
        }
        if (!audited)
        {
            return await call();
        }

        long entry;
        try
        {
            entry = await audit.BeginAsync(decision.Caller!, context.Method, AuditResource.Of(request), context.Peer, context.CancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var traceId = context.GetHttpContext().TraceIdentifier;
            LogAuditFailed(logger, e, context.Method);
            var status = ErrorMappingInterceptor.ToRpcException(e, traceId).Status;
            throw new RpcException(new Status(status.StatusCode, $"The call was not made, because it could not be recorded in the audit log: {status.Detail}"));
        }

        var code = StatusCode.Unknown;
        string? message = "the call ended without a status";
        try
        {
            var result = await call();
            (code, message) = (StatusCode.OK, null);
            return result;
        }
        catch (RpcException e)
        {
            (code, message) = (e.StatusCode, e.Status.Detail);
            throw;
        }
        finally
        {
            try
            {
                // The caller may have gone; the record of what it did is still written.
                await audit.EndAsync(entry, code, message, CancellationToken.None);
            }
            catch (Exception e)
            {
                LogAuditFailed(logger, e, context.Method);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rejected {Method} from {Peer}: {StatusCode} (token {TokenName})")]
    private static partial void LogRejected(ILogger logger, string method, string peer, StatusCode statusCode, string? tokenName);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not write the audit log entry of {Method}")]
    private static partial void LogAuditFailed(ILogger logger, Exception exception, string method);
}
