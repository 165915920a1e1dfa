using System.Text.Json;

namespace OrthancSeg.Worker.Jobs;

/// <summary>
/// How every job payload is written to and read from the jobs table: snake_case JSON of a sealed record. One place, so a
/// payload enqueued by one feature and run by its handler (maybe in another replica, after an upgrade) always agree.
/// </summary>
internal static class JobPayload
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static string Serialize<TPayload>(TPayload payload) where TPayload : class => JsonSerializer.Serialize(payload, Json);

    public static TPayload Deserialize<TPayload>(ClaimedJob job) where TPayload : class
    {
        try
        {
            return JsonSerializer.Deserialize<TPayload>(job.PayloadJson, Json)
                ?? throw new InvalidOperationException($"Job {job.Id} ({job.Kind}) has an empty payload");
        }
        catch (JsonException e)
        {
            throw new InvalidOperationException($"Job {job.Id} ({job.Kind}) has a payload that is not a {typeof(TPayload).Name}: {e.Message}", e);
        }
    }
}
