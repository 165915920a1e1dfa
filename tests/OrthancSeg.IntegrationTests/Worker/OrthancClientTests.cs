extern alias WorkerHost;

using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.Tests.Support;
using WorkerHost::OrthancSeg.Worker.Orthanc;

namespace OrthancSeg.IntegrationTests.Worker;

/// <summary>The worker's Orthanc client, wired exactly as the worker wires it, against a real Orthanc.</summary>
[Collection(OrthancCollection.Name)]
public sealed class OrthancClientTests(OrthancServer orthanc)
{
    [Fact]
    public async Task With_the_password_file_the_client_reads_orthancs_version()
    {
        await using var app = Build(OrthancUrl, OrthancServer.Username, orthanc.PasswordFile);

        var system = await app.Services.GetRequiredService<OrthancClient>().GetSystemAsync(CancellationToken.None);

        Assert.StartsWith("1.", system.Version, StringComparison.Ordinal);
        Assert.Equal("OrthancSeg", system.Name);
    }

    [Fact]
    public async Task A_wrong_password_fails_with_the_url_the_status_and_what_to_check()
    {
        var wrong = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(wrong, "not-the-password");
            await using var app = Build(OrthancUrl, OrthancServer.Username, wrong);

            var error = await Assert.ThrowsAsync<OrthancException>(() => app.Services.GetRequiredService<OrthancClient>().GetSystemAsync(CancellationToken.None));

            Assert.Equal(HttpStatusCode.Unauthorized, error.StatusCode);
            Assert.False(error.IsUnavailable);
            Assert.Contains($"GET {OrthancUrl}/system answered 401", error.Message, StringComparison.Ordinal);
            Assert.Contains("OrthancSeg:Orthanc:PasswordFile", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(wrong);
        }
    }

    [Fact]
    public async Task A_big_endian_instance_is_fetched_transcoded_to_explicit_little_endian()
    {
        // The codec refuses big endian: the fetch must ask Orthanc to transcode it instead of failing on it.
        var original = await File.ReadAllBytesAsync("/usr/lib/python3/dist-packages/pydicom/data/test_files/ExplVR_BigEnd.dcm");
        using var http = orthanc.CreateClient();
        using var content = new ByteArrayContent(original);
        using var stored = await http.PostAsync(new Uri("instances", UriKind.Relative), content);
        Assert.True(stored.IsSuccessStatusCode, await stored.Content.ReadAsStringAsync());
        using var answer = System.Text.Json.JsonDocument.Parse(await stored.Content.ReadAsStringAsync());
        var id = answer.RootElement.GetProperty("ID").GetString()!;
        await using var app = Build(OrthancUrl, OrthancServer.Username, orthanc.PasswordFile);
        using var scope = app.Services.CreateScope();

        var (file, _) = await scope.ServiceProvider.GetRequiredService<OrthancInstances>().FetchAsync(id, CancellationToken.None);

        Assert.Equal(TransferSyntaxes.ExplicitVRLittleEndian, file.TransferSyntaxUid);
        Assert.Equal(60, file.Dataset.GetInt(DicomTags.Rows));
        // An 8-bit RGB image: its pixels decode as 60 × 80 × 3 bytes once little endian.
        var frame = DicomPixelData.Create(file.Dataset, file.TransferSyntaxUid).GetFrame(0);
        Assert.Equal(60 * 80 * 3, frame.Length);
    }

    [Fact]
    public async Task An_orthanc_that_does_not_listen_is_unavailable_and_named()
    {
        var url = $"http://127.0.0.1:{ProcessRunner.FreePort()}";
        await using var app = Build(url, null, null);

        var error = await Assert.ThrowsAsync<OrthancException>(() => app.Services.GetRequiredService<OrthancClient>().GetSystemAsync(CancellationToken.None));

        Assert.Null(error.StatusCode);
        Assert.True(error.IsUnavailable);
        Assert.Contains($"GET {url}/system failed", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_uploaded_instance_is_read_back_through_every_typed_method_and_deleted()
    {
        await using var app = Build(OrthancUrl, OrthancServer.Username, orthanc.PasswordFile);
        var client = app.Services.GetRequiredService<OrthancClient>();
        var series = new TestSeries(slices: 2);
        var files = series.Files().Select(DicomWriter.ToBytes).ToList();
        var before = await LastChangeAsync(client);

        var first = await client.UploadAsync(files[0], CancellationToken.None);
        var second = await client.UploadAsync(files[1], CancellationToken.None);
        var again = await client.UploadAsync(files[0], CancellationToken.None);

        Assert.Equal("Success", first.Status);
        Assert.Equal("AlreadyStored", again.Status);
        Assert.Equal(first.Id, again.Id);
        var stored = await client.GetSeriesAsync(first.ParentSeries!, CancellationToken.None);
        Assert.Equal(series.SeriesInstanceUid, stored.MainDicomTags.Text("SeriesInstanceUID"));
        Assert.Equal("Abdomen liver", stored.MainDicomTags.Text("SeriesDescription"));
        Assert.Equal(new[] { first.Id, second.Id }.Order(StringComparer.Ordinal), stored.Instances.Order(StringComparer.Ordinal));
        Assert.Contains(await client.ListSeriesAsync(0, 10_000, CancellationToken.None), s => s.Id == stored.Id);

        var tags = await client.GetSeriesInstanceTagsAsync(stored.Id, CancellationToken.None);
        Assert.Equal(series.SopInstanceUids.Order(StringComparer.Ordinal), tags.Values.Select(t => t.Text("SOPInstanceUID")!).Order(StringComparer.Ordinal));
        Assert.Equal(series.PositionOf(0), tags[first.Id].Numbers("ImagePositionPatient"));
        Assert.Equal(8, tags[first.Id].Integer("Rows"));
        Assert.Equal(series.SopInstanceUids[0], (await client.GetInstanceTagsAsync(first.Id, CancellationToken.None)).Text("SOPInstanceUID"));
        Assert.Equal(SopClasses.CTImage, await client.GetInstanceSopClassUidAsync(first.Id, CancellationToken.None));
        Assert.Equal(files[0], await client.GetInstanceFileAsync(first.Id, CancellationToken.None));

        var changes = await client.GetChangesAsync(before, 100, CancellationToken.None);
        Assert.Contains(changes.Changes, c => c.ChangeType == "NewInstance" && c.ResourceId == first.Id);
        Assert.Contains(changes.Changes, c => c.ChangeType == "NewSeries" && c.ResourceId == stored.Id);
        Assert.True(changes.Last > before);

        await client.DeleteInstanceAsync(first.Id, CancellationToken.None);

        var gone = await Assert.ThrowsAsync<OrthancException>(() => client.GetInstanceFileAsync(first.Id, CancellationToken.None));
        Assert.True(gone.IsNotFound, gone.Message);
        Assert.False(gone.IsUnavailable);
        Assert.Equal([second.Id], (await client.GetSeriesAsync(stored.Id, CancellationToken.None)).Instances);
        var deleteAgain = await Assert.ThrowsAsync<OrthancException>(() => client.DeleteInstanceAsync(first.Id, CancellationToken.None));
        Assert.True(deleteAgain.IsNotFound);
    }

    [Fact]
    public async Task A_transcoded_file_is_answered_without_being_stored()
    {
        await using var app = Build(OrthancUrl, OrthancServer.Username, orthanc.PasswordFile);
        var client = app.Services.GetRequiredService<OrthancClient>();
        var original = await File.ReadAllBytesAsync("/usr/lib/python3/dist-packages/pydicom/data/test_files/MR_small_RLE.dcm");
        var upload = await client.UploadAsync(original, CancellationToken.None);

        var transcoded = DicomReader.Read(await client.GetTranscodedInstanceFileAsync(upload.Id, TransferSyntaxes.ExplicitVRLittleEndian, CancellationToken.None));

        Assert.Equal(TransferSyntaxes.ExplicitVRLittleEndian, transcoded.TransferSyntaxUid);
        var source = DicomReader.Read(original);
        Assert.Equal(source.Dataset.GetString(DicomTags.SOPInstanceUID), transcoded.Dataset.GetString(DicomTags.SOPInstanceUID));
        Assert.Equal(DicomPixelData.Create(source.Dataset, source.TransferSyntaxUid).GetFrame(0).ToArray(),
            DicomPixelData.Create(transcoded.Dataset, transcoded.TransferSyntaxUid).GetFrame(0).ToArray());
        // Still the one stored instance, still RLE: the modification was answered, not stored.
        Assert.Single((await client.GetSeriesAsync(upload.ParentSeries!, CancellationToken.None)).Instances);
        Assert.Equal(TransferSyntaxes.RleLossless, DicomReader.Read(await client.GetInstanceFileAsync(upload.Id, CancellationToken.None)).TransferSyntaxUid);
    }

    [Fact]
    public async Task A_stored_file_that_orthanc_cannot_transcode_is_a_problem_of_the_file_not_an_outage()
    {
        // A JPEG-LS SEG whose codestream has lost its start marker: Orthanc stores it without decoding, then cannot transcode it.
        var series = new TestSeries(slices: 2);
        var directory = Directory.CreateTempSubdirectory("orthancseg-jls-").FullName;
        byte[] damaged;
        try
        {
            var native = Path.Combine(directory, "seg.dcm");
            var compressed = Path.Combine(directory, "seg-jls.dcm");
            await File.WriteAllBytesAsync(native, DicomWriter.ToBytes(series.Seg([new(1, "liver")], [new(1, 1)], labelMap: true)));
            await ProcessRunner.RunAsync("dcmcjpls", [native, compressed], TimeSpan.FromSeconds(30));
            damaged = await File.ReadAllBytesAsync(compressed);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
        var start = damaged.AsSpan().IndexOf(new byte[] { 0xFF, 0xD8, 0xFF });
        Assert.True(start > 0, "no JPEG-LS codestream in the compressed file");
        damaged[start] = 0;
        damaged[start + 1] = 0;
        await using var app = Build(OrthancUrl, OrthancServer.Username, orthanc.PasswordFile);
        var upload = await app.Services.GetRequiredService<OrthancClient>().UploadAsync(damaged, CancellationToken.None);
        using var scope = app.Services.CreateScope();

        var error = await Assert.ThrowsAsync<DicomException>(() => scope.ServiceProvider.GetRequiredService<OrthancInstances>().FetchAsync(upload.Id, CancellationToken.None));

        Assert.Contains("Orthanc cannot transcode the file from JPEG-LS", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_file_whose_connection_breaks_off_part_way_is_asked_for_again_and_comes_whole()
    {
        var (id, stored) = await UploadOneAsync();
        // The first connection carries the answer's headers and the start of the file, then drops: the link cut mid-file.
        await using var link = new CuttingLink(orthanc.HttpPort, cuts: 1, bytesBeforeCut: 2000);
        await using var app = Build(link.Url, OrthancServer.Username, orthanc.PasswordFile, fastRetries: true);
        using var scope = app.Services.CreateScope();

        var (file, bytes) = await scope.ServiceProvider.GetRequiredService<OrthancInstances>().FetchAsync(id, CancellationToken.None);

        Assert.Equal(1, link.Cuts);
        Assert.Equal(2, link.Connections);
        Assert.Equal(stored.Length, bytes);
        Assert.Equal(stored, DicomWriter.ToBytes(file));
    }

    [Fact]
    public async Task A_series_fetched_as_exports_and_predictions_fetch_it_comes_whole_when_a_connection_breaks_off_mid_file()
    {
        var series = new TestSeries(slices: 3, rows: 64, columns: 64);
        var uploaded = series.Files().Select(DicomWriter.ToBytes).ToList();
        string seriesId;
        await using (var direct = Build(OrthancUrl, OrthancServer.Username, orthanc.PasswordFile))
        {
            var client = direct.Services.GetRequiredService<OrthancClient>();
            seriesId = (await client.UploadAsync(uploaded[0], CancellationToken.None)).ParentSeries!;
            foreach (var file in uploaded.Skip(1))
            {
                await client.UploadAsync(file, CancellationToken.None);
            }
        }
        // The series' instance list (about 1 KB) goes through; the first file is cut part way.
        await using var link = new CuttingLink(orthanc.HttpPort, cuts: 1, bytesBeforeCut: 4000);
        await using var app = Build(link.Url, OrthancServer.Username, orthanc.PasswordFile, fastRetries: true);
        using var scope = app.Services.CreateScope();

        var fetched = await scope.ServiceProvider.GetRequiredService<OrthancInstances>().FetchSeriesAsync(seriesId, 1, CancellationToken.None);

        Assert.Equal(1, link.Cuts);
        Assert.Equal(uploaded.Order(ByteArrays), fetched.Files.Select(DicomWriter.ToBytes).Order(ByteArrays));
        Assert.Equal(uploaded.Sum(f => (long)f.Length), fetched.Bytes);
    }

    [Fact]
    public async Task A_file_that_never_comes_whole_is_an_outage_after_the_retries_never_a_truncated_file()
    {
        var (id, _) = await UploadOneAsync();
        await using var link = new CuttingLink(orthanc.HttpPort, cuts: int.MaxValue, bytesBeforeCut: 2000);
        await using var app = Build(link.Url, OrthancServer.Username, orthanc.PasswordFile, fastRetries: true);
        using var scope = app.Services.CreateScope();

        var error = await Assert.ThrowsAsync<OrthancException>(() => scope.ServiceProvider.GetRequiredService<OrthancInstances>().FetchAsync(id, CancellationToken.None));

        // The first request and FetchRetries (3) more, each cut on a connection of its own; then the job engine's outage hand-back takes over.
        Assert.Equal(4, link.Cuts);
        Assert.Equal(4, link.Connections);
        Assert.True(error.IsUnavailable, error.Message);
        Assert.Contains($"GET {link.Url}/instances/{id}/file broke off while sending the file", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_file_whose_connection_goes_silent_part_way_fails_after_the_request_timeout_instead_of_waiting_for_ever()
    {
        var (id, _) = await UploadOneAsync();
        // The answer stops part way and the connection stays open: a cable pulled, with no RST ever coming.
        await using var link = new CuttingLink(orthanc.HttpPort, cuts: int.MaxValue, bytesBeforeCut: 2000, stall: true);
        await using var app = Build(link.Url, OrthancServer.Username, orthanc.PasswordFile, fastRetries: true, requestTimeout: "00:00:01");
        using var scope = app.Services.CreateScope();

        var fetch = scope.ServiceProvider.GetRequiredService<OrthancInstances>().FetchAsync(id, CancellationToken.None);
        // Guarded, so that a read that waits as long as TCP does fails the test instead of hanging it.
        Assert.Same(fetch, await Task.WhenAny(fetch, Task.Delay(TimeSpan.FromSeconds(60))));

        var error = await Assert.ThrowsAsync<OrthancException>(() => fetch);
        Assert.True(error.IsUnavailable, error.Message);
        Assert.Contains("did not send the whole file within 1 s (OrthancSeg:Orthanc:RequestTimeout)", error.Message, StringComparison.Ordinal);
        Assert.Equal(4, link.Cuts);
    }

    [Fact]
    public async Task An_id_that_is_not_an_orthanc_id_is_refused_before_any_request()
    {
        // Nothing listens here: a request would fail as unavailable, not as an argument error.
        await using var app = Build($"http://127.0.0.1:{ProcessRunner.FreePort()}", null, null);
        var client = app.Services.GetRequiredService<OrthancClient>();

        await Assert.ThrowsAsync<ArgumentException>(() => client.GetSeriesAsync("../system", CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => client.DeleteInstanceAsync("abc?expand", CancellationToken.None));
    }

    /// <summary>The newest change's sequence number: pages through the log, as catch-up does.</summary>
    private static async Task<long> LastChangeAsync(OrthancClient client)
    {
        long since = 0;
        while (true)
        {
            var page = await client.GetChangesAsync(since, 1000, CancellationToken.None);
            since = Math.Max(since, page.Last);
            if (page.Done || page.Changes.Count == 0)
            {
                return since;
            }
        }
    }

    private static readonly Comparer<byte[]> ByteArrays = Comparer<byte[]>.Create((a, b) => a.AsSpan().SequenceCompareTo(b));

    /// <summary>A 64×64 CT slice (8 KiB of pixels) stored in Orthanc: its Orthanc id and its bytes.</summary>
    private async Task<(string Id, byte[] Bytes)> UploadOneAsync()
    {
        await using var app = Build(OrthancUrl, OrthancServer.Username, orthanc.PasswordFile);
        var bytes = DicomWriter.ToBytes(new TestSeries(slices: 1, rows: 64, columns: 64).Files().Single());
        var upload = await app.Services.GetRequiredService<OrthancClient>().UploadAsync(bytes, CancellationToken.None);
        return (upload.Id, bytes);
    }

    private string OrthancUrl => orthanc.BaseUrl.ToString().TrimEnd('/');

    private static WebApplication Build(string url, string? username, string? passwordFile, bool fastRetries = false, string? requestTimeout = null)
    {
        var builder = WebApplication.CreateBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["OrthancSeg:Orthanc:Url"] = url,
            ["OrthancSeg:Orthanc:Username"] = username,
            ["OrthancSeg:Orthanc:PasswordFile"] = passwordFile,
            ["OrthancSeg:Orthanc:FetchRetryDelay"] = fastRetries ? "00:00:00.050" : null,
            ["OrthancSeg:Orthanc:RequestTimeout"] = requestTimeout,
        }.Where(setting => setting.Value is not null));
        builder.AddOrthancSegOrthanc();
        return builder.Build();
    }

    /// <summary>
    /// A TCP relay to Orthanc on loopback that closes a connection once <c>bytesBeforeCut</c> bytes of answer have gone through it, the
    /// first <c>cuts</c> times that happens: a connection that drops in the middle of a file. Short answers and later connections pass whole.
    /// With <c>stall</c>, a cut connection is held open without relaying anything more instead of closed: the peer gone silent.
    /// </summary>
    private sealed class CuttingLink : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly int _upstreamPort;
        private readonly long _bytesBeforeCut;
        private readonly bool _stall;
        private readonly Task _accepting;
        private int _cutsLeft;
        private int _cutsMade;
        private int _connections;

        public CuttingLink(int upstreamPort, int cuts, long bytesBeforeCut, bool stall = false)
        {
            (_upstreamPort, _cutsLeft, _bytesBeforeCut, _stall) = (upstreamPort, cuts, bytesBeforeCut, stall);
            _listener.Start();
            _accepting = AcceptAsync();
        }

        public string Url => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

        public int Connections => Volatile.Read(ref _connections);

        /// <summary>Connections closed part way through an answer.</summary>
        public int Cuts => Volatile.Read(ref _cutsMade);

        private async Task AcceptAsync()
        {
            var relays = new List<Task>();
            try
            {
                while (true)
                {
                    var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    Interlocked.Increment(ref _connections);
                    relays.Add(RelayAsync(client));
                }
            }
            catch (OperationCanceledException)
            {
                await Task.WhenAll(relays);
            }
        }

        private async Task RelayAsync(TcpClient client)
        {
            using (client)
            using (var upstream = new TcpClient())
            {
                await upstream.ConnectAsync(IPAddress.Loopback, _upstreamPort, _stop.Token);
                var toOrthanc = Copy(client.GetStream(), upstream.GetStream(), cutting: false);
                var toClient = Copy(upstream.GetStream(), client.GetStream(), cutting: true);
                // Either side done (the answer cut, a side closed): both sockets close, mid-file for a cut.
                await Task.WhenAny(toOrthanc, toClient);
            }
        }

        private async Task Copy(NetworkStream from, NetworkStream to, bool cutting)
        {
            var buffer = new byte[8192];
            var limit = cutting ? _bytesBeforeCut : long.MaxValue;
            try
            {
                while (true)
                {
                    if (limit == 0)
                    {
                        if (Interlocked.Decrement(ref _cutsLeft) >= 0)
                        {
                            Interlocked.Increment(ref _cutsMade);
                            if (_stall)
                            {
                                await Task.Delay(Timeout.Infinite, _stop.Token);
                            }
                            return;
                        }
                        limit = long.MaxValue;
                    }
                    var read = await from.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, limit)), _stop.Token);
                    if (read == 0)
                    {
                        return;
                    }
                    await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
                    limit -= read;
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
            {
                // The other side went away: this relay ends with it.
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _accepting;
            _stop.Dispose();
        }
    }
}
