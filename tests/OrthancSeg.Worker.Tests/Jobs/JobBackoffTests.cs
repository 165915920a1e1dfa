using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Tests.Jobs;

public sealed class JobBackoffTests
{
    private static readonly TimeSpan Base = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Max = TimeSpan.FromHours(1);

    [Theory]
    [InlineData(1, 10)]
    [InlineData(2, 20)]
    [InlineData(3, 40)]
    [InlineData(6, 320)]
    [InlineData(9, 2560)]
    public void Each_failure_doubles_the_wait(int failures, int seconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(seconds), JobBackoff.Delay(failures, Base, Max));
    }

    [Theory]
    [InlineData(10)]
    [InlineData(40)]
    [InlineData(int.MaxValue)]
    public void The_wait_is_capped_and_never_overflows(int failures)
    {
        Assert.Equal(Max, JobBackoff.Delay(failures, Base, Max));
    }

    [Fact]
    public void A_failure_count_below_one_is_a_programming_error()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => JobBackoff.Delay(0, Base, Max));
    }

    [Fact]
    public void Options_with_a_cap_below_the_base_are_refused_with_the_keys()
    {
        var result = new JobQueueOptionsValidator().Validate(null, new JobQueueOptions { RetryBaseDelay = TimeSpan.FromMinutes(5), RetryMaxDelay = TimeSpan.FromMinutes(1) });

        Assert.Contains("OrthancSeg:Jobs:RetryMaxDelay", Assert.Single(result.Failures!), StringComparison.Ordinal);
    }
}
