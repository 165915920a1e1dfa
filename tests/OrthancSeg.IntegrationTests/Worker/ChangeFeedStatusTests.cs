using System.Net.Http.Headers;
using System.Text.Json;
using Npgsql;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.Tests.Support;

namespace OrthancSeg.IntegrationTests.Worker;

/// <summary>
/// The change-cursor lag against a real Orthanc: the worker catches up once at start and then not for an hour, so changes made after
/// that are Orthanc's and not yet the worker's, and the status says how many.
/// </summary>
[Collection(OrthancCollection.Name)]
public sealed class ChangeFeedStatusTests(OrthancServer orthanc) : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private WorkerProcess _worker = null!;
    private long _lastBeforeStart;

    public async Task InitializeAsync()
    {
        // Give the log at least one change before the worker's start-up catch-up, so that catching up moves the cursor.
        using (var client = orthanc.CreateClient())
        {
            await UploadAsync(client, new TestSeries(slices: 1));
            _lastBeforeStart = await OrthancLastChangeAsync(client);
        }
        _worker = await WorkerProcess.StartAsync(orthanc.Postgres, new Dictionary<string, string>
        {
            ["OrthancSeg:Orthanc:Url"] = orthanc.BaseUrl.ToString().TrimEnd('/'),
            ["OrthancSeg:Orthanc:Username"] = OrthancServer.Username,
            ["OrthancSeg:Orthanc:PasswordFile"] = orthanc.PasswordFile,
            ["OrthancSeg:Records:CatchUpInterval"] = "01:00:00",
        });
    }

    public async Task DisposeAsync()
    {
        if (_worker is not null)
        {
            await _worker.DisposeAsync();
        }
    }

    private async Task<GetSystemStatusResponse> StatusAsync()
    {
        using var channel = _worker.CreateChannel();
        return await new SystemService.SystemServiceClient(channel).GetSystemStatusAsync(new GetSystemStatusRequest(), WorkerProcess.Bearer(_worker.ViewerToken));
    }

    private static async Task<long> OrthancLastChangeAsync(HttpClient client)
    {
        using var document = JsonDocument.Parse(await client.GetStringAsync(new Uri("changes?last", UriKind.Relative)));
        return document.RootElement.GetProperty("Last").GetInt64();
    }

    [Fact]
    public async Task Changes_made_after_the_last_catch_up_show_as_lag_between_the_stored_cursor_and_orthancs_last_change()
    {
        using var client = orthanc.CreateClient();
        var deadline = DateTimeOffset.UtcNow + Patience;
        var status = await StatusAsync();
        // The start-up catch-up reads at least up to what the log held when the worker started (a StableSeries may come after it).
        while (!(status.ChangeFeed.CursorRead && status.ChangeFeed.Cursor >= _lastBeforeStart))
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, $"the start-up catch-up did not reach Orthanc's last change: {status.ChangeFeed}\n{_worker.Output}");
            await Task.Delay(200);
            status = await StatusAsync();
        }
        var cursor = status.ChangeFeed.Cursor;
        var advancedAt = status.ChangeFeed.CursorAdvancedAt;
        Assert.True(status.Dependencies.All(d => d.Healthy), string.Join("; ", status.Dependencies));
        Assert.StartsWith("1.", status.OrthancVersion, StringComparison.Ordinal);

        await UploadAsync(client, new TestSeries(slices: 3));
        var last = await OrthancLastChangeAsync(client);
        status = await StatusAsync();

        Assert.True(last > cursor, $"Orthanc's log did not grow past {cursor}");
        Assert.Equal(cursor, status.ChangeFeed.Cursor);
        Assert.Equal(advancedAt, status.ChangeFeed.CursorAdvancedAt);
        Assert.True(status.ChangeFeed.OrthancLastSeq >= last, $"{status.ChangeFeed.OrthancLastSeq} < {last}");
        Assert.Equal(status.ChangeFeed.OrthancLastSeq - cursor, status.ChangeFeed.Lag);
        Assert.True(status.ChangeFeed.Lag >= last - cursor);
        Assert.Equal("", status.ChangeFeed.Detail);
        await using (var connection = new NpgsqlConnection(_worker.ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT last_seq FROM change_cursor", connection);
            Assert.Equal(cursor, (long)(await command.ExecuteScalarAsync())!);
        }

        var cli = await CliProcess.RunAsync(["status", "--json", "--url", _worker.Address, "--token-file", _worker.AdminTokenFile]);
        Assert.True(cli.ExitCode == 0, cli.Stderr + cli.Stdout);
        using var json = JsonDocument.Parse(cli.Stdout);
        var feed = json.RootElement.GetProperty("changeFeed");
        Assert.Equal(cursor, feed.GetProperty("cursor").GetInt64());
        Assert.True(feed.GetProperty("lag").GetInt64() >= last - cursor);
    }

    private static async Task UploadAsync(HttpClient client, TestSeries series)
    {
        foreach (var file in series.Files())
        {
            using var content = new ByteArrayContent(DicomWriter.ToBytes(file));
            content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
            using var response = await client.PostAsync(new Uri("instances", UriKind.Relative), content);
            Assert.True(response.IsSuccessStatusCode, $"Orthanc refused an upload: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
    }
}
