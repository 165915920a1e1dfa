namespace OrthancSeg.Worker.Jobs;

/// <summary>
/// Exponential backoff between attempts: base, 2×base, 4×base … capped. No jitter: jobs fail at
/// independent times already, and a predictable schedule is easier for operators to reason about.
/// </summary>
internal static class JobBackoff
{
    /// <summary>The wait before the next attempt after <paramref name="failedAttempts"/> failures (1 = the first failure).</summary>
    public static TimeSpan Delay(int failedAttempts, TimeSpan baseDelay, TimeSpan maxDelay)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(failedAttempts, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(baseDelay, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDelay, baseDelay);
        // Beyond 2^30 the cap has long been reached; stopping there keeps the multiplication from overflowing.
        var factor = Math.Pow(2, Math.Min(failedAttempts - 1, 30));
        var ticks = baseDelay.Ticks * factor;
        return ticks >= maxDelay.Ticks ? maxDelay : TimeSpan.FromTicks((long)ticks);
    }
}
