using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Runtime.ExceptionServices;

namespace OrthancSeg.Dicom.Nifti;

/// <summary>
/// Gzip the way pigz does: cut the input into fixed-size blocks, deflate every block independently on
/// all cores, end each non-final block with a sync flush (an empty stored block, so it ends on a byte
/// boundary) and the last one with BFINAL. The pieces concatenate into ONE valid deflate stream inside
/// one gzip member, which every gzip reader accepts. Blocks reach the output in order as they finish;
/// at most a small window of compressed blocks is held, so memory stays at the input plus that window.
/// The output depends only on the input, the level and the block size, never on the thread count.
/// </summary>
internal sealed class ParallelGzip
{
    private readonly ReadOnlyMemory<byte>[] _segments;
    private readonly long _totalLength;
    private readonly int _blockSize;
    private readonly int _blockCount;
    private readonly int _level;
    private readonly int _window;

    private readonly object _gate = new();
    private readonly PooledBufferStream?[] _finished;
    private int _nextBlock;
    private int _writtenBlocks;
    private bool _aborted;
    private Exception? _failure;

    private ParallelGzip(ReadOnlyMemory<byte>[] segments, int level, int blockSize, int degreeOfParallelism)
    {
        _segments = segments;
        _totalLength = segments.Sum(s => (long)s.Length);
        _blockSize = blockSize;
        _blockCount = checked((int)Math.Max(1, (_totalLength + blockSize - 1) / blockSize));
        _level = level;
        _window = Math.Max(4, 2 * degreeOfParallelism);
        _finished = new PooledBufferStream?[_blockCount];
    }

    /// <summary>Writes the gzip of the concatenated <paramref name="segments"/> to <paramref name="output"/>.</summary>
    public static void Compress(ReadOnlyMemory<byte>[] segments, Stream output, int level, int blockSize, int degreeOfParallelism)
    {
        var gzip = new ParallelGzip(segments, level, blockSize, degreeOfParallelism);
        if (degreeOfParallelism <= 1 || gzip._blockCount == 1)
        {
            gzip.RunSequentially(output);
        }
        else
        {
            gzip.RunInParallel(output, Math.Min(degreeOfParallelism, gzip._blockCount));
        }
    }

    private void RunSequentially(Stream output)
    {
        var crc = new Crc32();
        WriteGzipHeader(output);
        for (var block = 0; block < _blockCount; block++)
        {
            using var compressed = CompressBlock(block);
            AppendBlock(output, crc, block, compressed);
        }
        WriteGzipTrailer(output, crc);
    }

    private void RunInParallel(Stream output, int workers)
    {
        // Dedicated threads: the workers block on the window, which would starve a small thread pool.
        var tasks = new Task[workers];
        for (var w = 0; w < workers; w++)
        {
            tasks[w] = Task.Factory.StartNew(Work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }

        try
        {
            var crc = new Crc32();
            WriteGzipHeader(output);
            for (var block = 0; block < _blockCount; block++)
            {
                PooledBufferStream compressed;
                lock (_gate)
                {
                    while (_finished[block] is null && !_aborted)
                    {
                        Monitor.Wait(_gate);
                    }
                    if (_aborted)
                    {
                        break;
                    }
                    compressed = _finished[block]!;
                    _finished[block] = null;
                }
                using (compressed)
                {
                    AppendBlock(output, crc, block, compressed);
                }
                lock (_gate)
                {
                    _writtenBlocks = block + 1;
                    Monitor.PulseAll(_gate);
                }
            }
            if (_failure is null)
            {
                WriteGzipTrailer(output, crc);
            }
        }
        catch
        {
            Abort(null);
            throw;
        }
        finally
        {
            Task.WaitAll(tasks);
            foreach (var leftover in _finished)
            {
                leftover?.Dispose();
            }
        }

        if (_failure is not null)
        {
            ExceptionDispatchInfo.Capture(_failure).Throw();
        }
    }

    private void Work()
    {
        while (true)
        {
            int block;
            lock (_gate)
            {
                // Claim blocks strictly in order so the oldest unwritten block always has a worker.
                while (!_aborted && _nextBlock < _blockCount && _nextBlock >= _writtenBlocks + _window)
                {
                    Monitor.Wait(_gate);
                }
                if (_aborted || _nextBlock >= _blockCount)
                {
                    return;
                }
                block = _nextBlock++;
            }

            PooledBufferStream compressed;
            try
            {
                compressed = CompressBlock(block);
            }
#pragma warning disable CA1031 // Any failure is handed to the writer thread, which rethrows it.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Abort(e);
                return;
            }

            lock (_gate)
            {
                if (_aborted)
                {
                    compressed.Dispose();
                    return;
                }
                _finished[block] = compressed;
                Monitor.PulseAll(_gate);
            }
        }
    }

    private void Abort(Exception? failure)
    {
        lock (_gate)
        {
            _failure ??= failure;
            _aborted = true;
            Monitor.PulseAll(_gate);
        }
    }

    private PooledBufferStream CompressBlock(int block)
    {
        var (start, length) = BlockRange(block);
        var final = block == _blockCount - 1;
        // Incompressible data grows by a few bytes per stored block; start at a size that rarely regrows.
        var sink = new PooledBufferStream(length + (length >> 7) + 64);
        try
        {
            var options = new ZLibCompressionOptions { CompressionLevel = _level, CompressionStrategy = ZLibCompressionStrategy.Default };
            var keep = -1;
            using (var deflate = new DeflateStream(sink, options, leaveOpen: true))
            {
                foreach (var slice in Slices(start, length))
                {
                    deflate.Write(slice.Span);
                }
                if (!final)
                {
                    // Flush() is Z_SYNC_FLUSH: everything so far, then an empty stored block that ends on a
                    // byte boundary. Dispose then appends a BFINAL block, which only the last piece may keep.
                    deflate.Flush();
                    keep = sink.WrittenCount;
                }
            }
            if (keep >= 0)
            {
                sink.Truncate(keep);
            }
            return sink;
        }
        catch
        {
            sink.Dispose();
            throw;
        }
    }

    private void AppendBlock(Stream output, Crc32 crc, int block, PooledBufferStream compressed)
    {
        var (start, length) = BlockRange(block);
        foreach (var slice in Slices(start, length))
        {
            crc.Append(slice.Span);
        }
        output.Write(compressed.Written);
    }

    private (long Start, int Length) BlockRange(int block)
    {
        var start = (long)block * _blockSize;
        return (start, (int)Math.Min(_blockSize, _totalLength - start));
    }

    /// <summary>The pieces of the input segments that make up [start, start + length).</summary>
    private List<ReadOnlyMemory<byte>> Slices(long start, int length)
    {
        var slices = new List<ReadOnlyMemory<byte>>(2);
        long segmentStart = 0;
        var end = start + length;
        foreach (var segment in _segments)
        {
            var segmentEnd = segmentStart + segment.Length;
            if (segmentEnd > start && segmentStart < end)
            {
                var from = Math.Max(start, segmentStart) - segmentStart;
                var to = Math.Min(end, segmentEnd) - segmentStart;
                slices.Add(segment.Slice((int)from, (int)(to - from)));
            }
            segmentStart = segmentEnd;
        }
        return slices;
    }

    private static void WriteGzipHeader(Stream output)
    {
        // ID1 ID2, CM = deflate, no flags, MTIME 0 (reproducible output), XFL 0, OS 255 = unknown.
        ReadOnlySpan<byte> header = [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xFF];
        output.Write(header);
    }

    private void WriteGzipTrailer(Stream output, Crc32 crc)
    {
        Span<byte> trailer = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(trailer, crc.GetCurrentHashAsUInt32());
        BinaryPrimitives.WriteUInt32LittleEndian(trailer[4..], unchecked((uint)_totalLength));
        output.Write(trailer);
    }
}
