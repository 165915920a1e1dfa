using System.Buffers.Binary;
using System.Diagnostics;

namespace OrthancSeg.Dicom.Tests.Codec;

/// <summary>
/// Garbage must end in a <see cref="DicomException"/>: never another exception, a hang, deep recursion or an
/// allocation driven by a forged length. Seeded, so a failure reproduces.
/// </summary>
public sealed class FuzzTests
{
    private const int MutationsPerFile = 1500;

    [Fact]
    public void Mutated_files_fail_only_with_dicom_exceptions_quickly_and_within_bounded_memory()
    {
        var stopwatch = Stopwatch.StartNew();
        var failures = new List<string>();
        var random = new Random(20261125);
        var runs = 0;
        var refused = 0;
        foreach (var (name, bytes) in Seeds())
        {
            var vrPositions = VRPositions(bytes);
            for (var i = 0; i < MutationsPerFile; i++)
            {
                var (mutated, mutation) = Mutate(bytes, vrPositions, random);
                refused += Exercise(mutated, $"{name} {mutation}", failures) ? 0 : 1;
                runs++;
            }
        }

        Assert.True(failures.Count == 0, string.Join('\n', failures.Take(20)));
        // The mutations must actually break files, or the test proves nothing.
        Assert.True(refused > runs / 4, $"only {refused} of {runs} mutated files refused");
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(60), $"fuzzing took {stopwatch.Elapsed}");
    }

    [Fact]
    public void Every_truncation_of_small_files_fails_only_with_dicom_exceptions()
    {
        var stopwatch = Stopwatch.StartNew();
        var failures = new List<string>();
        var refused = 0;
        foreach (var (name, bytes) in new[] { ("rtplan.dcm", TestFiles.PydicomBytes("rtplan.dcm")), ("seg", SegmentationBytes()) })
        {
            for (var length = 0; length < bytes.Length; length++)
            {
                refused += Exercise(bytes[..length], $"{name} truncated to {length}", failures) ? 0 : 1;
            }
        }

        Assert.True(failures.Count == 0, string.Join('\n', failures.Take(20)));
        // Cutting at an element boundary leaves a valid, shorter file; nearly every other cut must be refused.
        Assert.True(refused > 3000, $"only {refused} truncations refused");
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(60), $"truncating took {stopwatch.Elapsed}");
    }

    [Fact]
    public void Sequences_nested_deeper_than_the_limit_are_refused()
    {
        using var stream = new MemoryStream();
        for (var depth = 0; depth < 200; depth++)
        {
            // (0008,1115) SQ undefined length, then an item of undefined length.
            stream.Write([0x08, 0x00, 0x15, 0x11, (byte)'S', (byte)'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
            stream.Write([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }

        var error = Assert.Throws<DicomException>(() => DicomReader.Read(stream.ToArray()));

        Assert.Contains("deeper than 64 levels", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Huge_length_field_is_refused_without_allocating_it()
    {
        var bytes = TestFiles.PydicomBytes("CT_small.dcm");
        var pixelDataHeader = bytes.AsSpan().IndexOf(new byte[] { 0xE0, 0x7F, 0x10, 0x00, (byte)'O', (byte)'W' });
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(pixelDataHeader + 8), 0x7FFFFFF0);
        var before = GC.GetAllocatedBytesForCurrentThread();

        var error = Assert.Throws<DicomException>(() => DicomReader.Read(bytes));

        Assert.Contains("PixelData (7FE0,0010) (2147483632 bytes", error.Message, StringComparison.Ordinal);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 10 * bytes.Length);
    }

    /// <summary>Reads, decodes every frame and rewrites; true when the input was accepted.</summary>
    private static bool Exercise(byte[] input, string description, List<string> failures)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var accepted = false;
        try
        {
            var file = DicomReader.Read(input);
            accepted = true;
            Touch(file.Dataset);
            if (file.Dataset.Contains(DicomTags.PixelData))
            {
                var pixels = DicomPixelData.Create(file.Dataset, file.TransferSyntaxUid);
                for (var f = 0; f < Math.Min(pixels.FrameCount, 16); f++)
                {
                    pixels.GetFrame(f);
                }
            }
            DicomReader.Read(DicomWriter.ToBytes(file));
        }
        catch (DicomException)
        {
            // The one acceptable failure.
        }
        catch (Exception e)
        {
            failures.Add($"{description}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
        }
        // Reading allocates per element, never per forged length; deflate may legitimately inflate up to 1032:1.
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        var limit = (IsDeflated(input) ? 1100L : 100L) * input.Length + (8 << 20);
        if (allocated > limit)
        {
            failures.Add($"{description}: allocated {allocated} bytes for {input.Length} bytes of input");
        }
        return accepted;
    }

    /// <summary>Decodes every value the way consumers will, where malformed values must also end in DicomException.</summary>
    private static void Touch(DicomDataset dataset)
    {
        foreach (var element in dataset)
        {
            if (element.IsSequence)
            {
                foreach (var item in element.Items!)
                {
                    Touch(item);
                }
            }
            else if (DicomVRInfo.IsText(element.VR))
            {
                dataset.GetStrings(element.Tag);
            }
            else if (element.VR is DicomVR.US or DicomVR.SS or DicomVR.UL or DicomVR.SL or DicomVR.FL or DicomVR.FD)
            {
                dataset.GetDoubles(element.Tag);
            }
        }
    }

    private static (byte[] Bytes, string Mutation) Mutate(byte[] original, List<int> vrPositions, Random random)
    {
        var bytes = (byte[])original.Clone();
        switch (random.Next(6))
        {
            case 0:
            {
                var flips = random.Next(1, 9);
                for (var i = 0; i < flips; i++)
                {
                    var at = random.Next(bytes.Length);
                    bytes[at] ^= (byte)(1 << random.Next(8));
                }
                return (bytes, $"{flips} bit flips (seeded)");
            }
            case 1:
            {
                var at = random.Next(bytes.Length);
                var count = Math.Min(random.Next(1, 5), bytes.Length - at);
                var value = random.Next(2) == 0 ? (byte)0xFF : (byte)0x00;
                bytes.AsSpan(at, count).Fill(value);
                return (bytes, $"{count} bytes at {at} set to {value:X2}");
            }
            case 2:
            case 3:
            {
                // Length fields: after a VR, the 2-byte short length or the 4-byte long length.
                var vr = vrPositions[random.Next(vrPositions.Count)];
                uint[] huge = [0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, 0x80000000, 0x00FFFFFF, (uint)bytes.Length];
                var value = huge[random.Next(huge.Length)];
                if (vr + 8 <= bytes.Length && random.Next(2) == 0)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(vr + 4), value);
                    return (bytes, $"long length after VR at {vr} set to {value:X8}");
                }
                BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(vr + 2), (ushort)value);
                return (bytes, $"short length after VR at {vr} set to {(ushort)value:X4}");
            }
            case 4:
            {
                // Item and delimiter lengths, which carry no VR.
                var at = random.Next(Math.Max(1, bytes.Length - 8));
                var item = bytes.AsSpan().Slice(at).IndexOf(new byte[] { 0xFE, 0xFF });
                if (item < 0 || at + item + 8 > bytes.Length)
                {
                    return (bytes[..at], $"truncated to {at}");
                }
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at + item + 4), random.Next(2) == 0 ? 0xFFFFFFFF : 0x7FFFFFF0);
                return (bytes, $"item length at {at + item + 4} set huge");
            }
            default:
            {
                var length = random.Next(bytes.Length);
                return (bytes[..length], $"truncated to {length}");
            }
        }
    }

    private static List<int> VRPositions(byte[] bytes)
    {
        var positions = new List<int>();
        for (var i = 4; i + 4 <= bytes.Length; i++)
        {
            if (bytes[i] is >= (byte)'A' and <= (byte)'Z' && DicomVRInfo.TryParse(bytes[i], bytes[i + 1], out _))
            {
                positions.Add(i);
            }
        }
        return positions.Count == 0 ? [4] : positions;
    }

    private static bool IsDeflated(byte[] input) =>
        input.AsSpan().IndexOf("1.2.840.10008.1.2.1.99"u8) is var at && at >= 0 && at < 512;

    private static IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        foreach (var name in new[]
        {
            "CT_small.dcm", "MR_small_implicit.dcm", "rtplan.dcm", "image_dfl.dcm", "MR_small_RLE.dcm", "rtdose_rle.dcm",
            "UN_sequence.dcm", "nested_priv_SQ.dcm", "liver_1frame.dcm", "ExplVR_LitEndNoMeta.dcm", "SC_rgb_rle_16bit.dcm",
        })
        {
            yield return (name, TestFiles.PydicomBytes(name));
        }
        yield return ("seg", SegmentationBytes());
    }

    private static byte[] SegmentationBytes() => DicomWriter.ToBytes(DicomFile.Create(SampleDatasets.Segmentation()));
}
