extern alias WorkerHost;

using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using OrthancSeg.IntegrationTests.Fixtures;
using WorkerHost::OrthancSeg.Worker.Jobs;
using WorkerHost::OrthancSeg.Worker.Orthanc;
using WorkerHost::OrthancSeg.Worker.Persistence;

namespace OrthancSeg.IntegrationTests.Worker;

/// <summary>
/// The job runner against a real PostgreSQL, with handlers of the test's own: heartbeats, cancellation, outages, hand-back on
/// stop and the wake-up of a retried dead letter, each as a user of the queue would see it in the jobs table.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class JobRunnerTests(PostgresServer server) : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private NpgsqlDataSource _dataSource = null!;

    public async Task InitializeAsync()
    {
        _dataSource = NpgsqlDataSource.Create(await server.CreateDatabaseAsync("runner"));
        await new MigrationRunner(_dataSource, Microsoft.Extensions.Logging.Abstractions.NullLogger<MigrationRunner>.Instance).ApplyAsync(CancellationToken.None);
    }

    public async Task DisposeAsync() => await _dataSource.DisposeAsync();

    [Fact]
    public async Task A_job_that_takes_5_s_with_a_2_s_lease_runs_exactly_once_and_succeeds()
    {
        await using var engine = await Engine.StartAsync(_dataSource, o => o.LeaseDuration = TimeSpan.FromSeconds(2));

        var job = await engine.Queue.EnqueueAsync(TestJobKinds.Work, "long", new Work("long", RunFor: TimeSpan.FromSeconds(5)));

        var done = await engine.WaitForStateAsync(job.Id, "succeeded", Patience);
        Assert.Equal(1, engine.Probe.Runs("long"));
        Assert.Equal((1, 0), (done.Attempts, done.Waits));
        Assert.Null(done.LastError);
    }

    [Fact]
    public async Task A_queued_job_that_is_cancelled_never_starts_and_its_hook_says_so()
    {
        await using var engine = await Engine.StartAsync(_dataSource);
        var job = await engine.Queue.EnqueueAsync(TestJobKinds.Work, "later", new Work("later", TimeSpan.Zero), notBefore: DateTimeOffset.UtcNow.AddHours(1));

        await engine.Queue.RequestCancelAsync(job.Id);

        var cancelled = await engine.WaitForStateAsync(job.Id, "cancelled", Patience);
        Assert.Equal(0, engine.Probe.Runs("later"));
        Assert.Equal(0, cancelled.Attempts);
        Assert.Equal(["later: cancelled"], engine.Probe.Endings);
    }

    [Fact]
    public async Task A_running_job_that_is_cancelled_from_another_process_stops_at_its_heartbeat()
    {
        await using var engine = await Engine.StartAsync(_dataSource);
        var job = await engine.Queue.EnqueueAsync(TestJobKinds.Work, "forever", new Work("forever", Timeout.InfiniteTimeSpan));
        await engine.WaitForStateAsync(job.Id, "running", Patience);

        // Only the database flag, as a CancelJob served by another replica sets it: this runner must notice it by itself.
        await engine.Queue.RequestCancelAsync(job.Id);

        var cancelled = await engine.WaitForStateAsync(job.Id, "cancelled", Patience);
        Assert.Equal(1, engine.Probe.Runs("forever"));
        Assert.Equal("cancelled by an admin while running", cancelled.LastError);
        Assert.Equal(["forever: cancelled"], engine.Probe.Endings);
    }

    [Fact]
    public async Task Work_cancelled_just_before_it_is_published_is_not_published_and_the_job_ends_cancelled()
    {
        await using var engine = await Engine.StartAsync(_dataSource);

        // The handler asks for its own cancel and publishes at once, before any heartbeat could notice: only the fence stops it.
        var job = await engine.Queue.EnqueueAsync(TestJobKinds.Work, "publish", new Work("publish", TimeSpan.Zero, CancelThenPublish: true));

        var cancelled = await engine.WaitForStateAsync(job.Id, "cancelled", Patience);
        Assert.Equal(0, engine.Probe.Published);
        Assert.Equal(1, cancelled.Attempts);
        Assert.Equal(["publish: cancelled"], engine.Probe.Endings);
    }

    [Fact]
    public async Task An_outage_of_orthanc_spends_no_attempts_and_the_job_succeeds_when_it_is_back()
    {
        await using var engine = await Engine.StartAsync(_dataSource);
        engine.Probe.OrthancDown = true;

        // One attempt allowed: a single counted failure would make it a dead letter.
        var job = await engine.Queue.EnqueueAsync(TestJobKinds.Work, "needs-orthanc", new Work("needs-orthanc", TimeSpan.Zero, NeedsOrthanc: true), maxAttempts: 1);
        await ProcessRunner.WaitUntilAsync(async () => (await engine.Queue.GetAsync(job.Id)).Waits >= 3, Patience, "three hand-backs while Orthanc is down");
        var waiting = await engine.Queue.GetAsync(job.Id);
        engine.Probe.OrthancDown = false;

        var done = await engine.WaitForStateAsync(job.Id, "succeeded", Patience);
        Assert.Contains(waiting.State, new[] { "queued", "running" });
        Assert.StartsWith("waiting for Orthanc", waiting.LastError, StringComparison.Ordinal);
        Assert.Equal(1, done.Attempts);
        Assert.True(done.Waits >= 3, $"{done.Waits} waits");
        Assert.Empty(engine.Probe.Endings);
    }

    [Fact]
    public async Task A_failure_of_the_work_itself_spends_attempts_and_ends_as_a_dead_letter_with_its_hook()
    {
        await using var engine = await Engine.StartAsync(_dataSource, o => o.RetryBaseDelay = TimeSpan.FromMilliseconds(100));

        var job = await engine.Queue.EnqueueAsync(TestJobKinds.Work, "broken", new Work("broken", TimeSpan.Zero, Fail: true), maxAttempts: 2);

        var dead = await engine.WaitForStateAsync(job.Id, "dead", Patience);
        Assert.Equal(2, engine.Probe.Runs("broken"));
        Assert.Equal("the work itself is broken", dead.LastError);
        Assert.Equal(["broken: retrying", "broken: dead"], engine.Probe.Endings);
    }

    [Fact]
    public async Task A_retried_dead_letter_starts_at_once_without_waiting_for_a_poll()
    {
        // A poll interval no test outlasts: only the wake-up of the retry can start the job in time.
        await using var engine = await Engine.StartAsync(_dataSource, o => o.PollInterval = TimeSpan.FromHours(1));
        var job = await engine.Queue.EnqueueAsync(TestJobKinds.Work, "second-time-lucky", new Work("second-time-lucky", TimeSpan.Zero, Fail: true), maxAttempts: 1);
        await engine.WaitForStateAsync(job.Id, "dead", Patience);
        engine.Probe.Heal("second-time-lucky");

        var retried = DateTimeOffset.UtcNow;
        await engine.Queue.RetryDeadAsync(job.Id);

        var done = await engine.WaitForStateAsync(job.Id, "succeeded", TimeSpan.FromSeconds(10));
        Assert.True(done.FinishedAt - retried < TimeSpan.FromSeconds(5), $"finished {done.FinishedAt - retried} after the retry");
    }

    [Fact]
    public async Task A_stopping_worker_hands_its_running_job_back_without_spending_the_attempt()
    {
        var engine = await Engine.StartAsync(_dataSource);
        var queue = engine.Queue;
        JobRecord handedBack;
        var waitsBefore = 0;
        try
        {
            var job = await queue.EnqueueAsync(TestJobKinds.Work, "interrupted", new Work("interrupted", Timeout.InfiniteTimeSpan));
            // Under a heavy load an attempt can already have been handed back once for a PostgreSQL hiccup; count from here.
            var running = await engine.WaitForStateAsync(job.Id, "running", Patience);
            waitsBefore = running.Waits;

            await engine.DisposeAsync();

            handedBack = await queue.GetAsync(job.Id);
        }
        finally
        {
            await engine.DisposeAsync();
        }
        Assert.Equal(("queued", 0, waitsBefore + 1), (handedBack.State, handedBack.Attempts, handedBack.Waits));
        Assert.True(handedBack.NotBefore <= DateTimeOffset.UtcNow, "due at once for the next worker");
    }

    /// <summary>A job runner with the test's handler, on this test's database.</summary>
    private sealed class Engine : IAsyncDisposable
    {
        private readonly ServiceProvider _services;
        private readonly JobRunner _runner;
        private bool _stopped;

        private Engine(ServiceProvider services)
        {
            _services = services;
            _runner = services.GetRequiredService<JobRunner>();
        }

        public JobQueue Queue => _services.GetRequiredService<JobQueue>();

        public Probe Probe => _services.GetRequiredService<Probe>();

        public static async Task<Engine> StartAsync(NpgsqlDataSource dataSource, Action<JobQueueOptions>? configure = null)
        {
            var options = new JobQueueOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(200), OutageBaseDelay = TimeSpan.FromMilliseconds(100), OutageMaxDelay = TimeSpan.FromMilliseconds(300) };
            configure?.Invoke(options);
            var services = new ServiceCollection()
                .AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning))
                .AddSingleton(dataSource)
                .AddSingleton(Options.Create(options))
                .AddSingleton<JobSignal>()
                .AddSingleton<JobQueue>()
                .AddSingleton<DependencyOutages>()
                .AddSingleton<JobRunner>()
                .AddSingleton<Probe>()
                .AddJobHandler<WorkHandler>()
                .AddJobPool(TestJobKinds.Pool, _ => 4)
                .BuildServiceProvider();
            var engine = new Engine(services);
            await engine._runner.StartAsync(CancellationToken.None);
            return engine;
        }

        public async Task<JobRecord> WaitForStateAsync(JobId id, string state, TimeSpan timeout)
        {
            JobRecord? last = null;
            try
            {
                await ProcessRunner.WaitUntilAsync(async () => (last = await Queue.GetAsync(id)).State == state, timeout, $"job {id} to be {state}");
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"{e.Message}; it is {last?.State} after {last?.Attempts} attempt(s), last error: {last?.LastError}", e);
            }
            return last!;
        }

        public async ValueTask DisposeAsync()
        {
            if (!_stopped)
            {
                _stopped = true;
                await _runner.StopAsync(CancellationToken.None);
                await _services.DisposeAsync();
            }
        }
    }
}

internal static class TestJobKinds
{
    public const string Work = "test-work";
    public const string Pool = "test";
}

/// <summary>What the test handler does: run for a while (until cancelled when infinite), fail, or need an Orthanc that may be down.</summary>
internal sealed record Work(string Name, TimeSpan RunFor, bool Fail = false, bool NeedsOrthanc = false, bool CancelThenPublish = false);

/// <summary>What the test handler saw: runs per job name, hooks called, and the switches the tests flip.</summary>
internal sealed class Probe
{
    private readonly ConcurrentDictionary<string, int> _runs = new();
    private readonly ConcurrentDictionary<string, bool> _healed = new();
    private readonly ConcurrentQueue<string> _endings = new();

    public volatile bool OrthancDown;

    private int _published;

    public int Published => _published;

    public void Publish() => Interlocked.Increment(ref _published);

    public int Runs(string name) => _runs.GetValueOrDefault(name);

    public void Ran(string name) => _runs.AddOrUpdate(name, 1, (_, n) => n + 1);

    public void Heal(string name) => _healed[name] = true;

    public bool IsHealed(string name) => _healed.ContainsKey(name);

    public IReadOnlyList<string> Endings => [.. _endings];

    public void Ended(string what) => _endings.Enqueue(what);
}

internal sealed class WorkHandler(Probe probe, JobQueue queue, NpgsqlDataSource dataSource) : JobHandler<Work>, IJobKind
{
    public static string Kind => TestJobKinds.Work;

    public static string Pool => TestJobKinds.Pool;

    protected override async Task RunAsync(Work payload, JobAttempt attempt, CancellationToken cancellationToken)
    {
        if (payload.NeedsOrthanc && probe.OrthancDown)
        {
            throw new OrthancException("Orthanc GET http://127.0.0.1:1/system failed: Connection refused", null);
        }
        probe.Ran(payload.Name);
        if (payload.Fail && !probe.IsHealed(payload.Name))
        {
            throw new InvalidOperationException("the work itself is broken");
        }
        await Task.Delay(payload.RunFor, cancellationToken);
        if (payload.CancelThenPublish)
        {
            await queue.RequestCancelAsync(attempt.JobId, cancellationToken);
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await attempt.FenceAsync(connection, transaction, cancellationToken);
            probe.Publish();
            await attempt.CompleteAsync(connection, transaction, cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }
    }

    protected override Task OnAttemptFailedAsync(Work payload, JobAttempt attempt, string error, DateTimeOffset retryAt, CancellationToken cancellationToken)
    {
        probe.Ended($"{payload.Name}: retrying");
        return Task.CompletedTask;
    }

    protected override Task OnEndedAsync(Work payload, JobAttempt attempt, JobEnding ending, CancellationToken cancellationToken)
    {
        probe.Ended($"{payload.Name}: {(ending.Cancelled ? "cancelled" : "dead")}");
        return Task.CompletedTask;
    }
}
