using System.Runtime.ExceptionServices;

namespace OrthancSeg.Dicom.Volumes;

/// <summary>Per-slice parallel loops that surface the first refusal as itself, not wrapped in an AggregateException.</summary>
internal static class Parallelism
{
    public static void For(int count, Action<int, ParallelLoopState> body)
    {
        try
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, body);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            var first = e.InnerExceptions.FirstOrDefault(x => x is DicomException) ?? e.InnerExceptions[0];
            ExceptionDispatchInfo.Capture(first).Throw();
            throw;
        }
    }
}
