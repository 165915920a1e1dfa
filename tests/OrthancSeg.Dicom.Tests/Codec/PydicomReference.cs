using System.Text;
using System.Text.Json;

namespace OrthancSeg.Dicom.Tests.Codec;

/// <summary>
/// What pydicom reads from a file, element by element, compared with what the codec reads. pydicom parses values
/// lazily, so for most elements the dump holds the raw value bytes exactly as stored, which makes the comparison
/// byte-exact rather than a comparison of two decoders' string conversions.
/// </summary>
internal static class PydicomReference
{
    private const string DumpScript = """
        import json, sys
        import pydicom
        from pydicom.dataelem import RawDataElement
        from pydicom.multival import MultiValue

        def value_of(value):
            if isinstance(value, (bytes, bytearray)):
                return {"hex": bytes(value).hex()}
            if value is None:
                return {"text": ""}
            if isinstance(value, (int, float)):
                return {"numbers": [value]}
            if isinstance(value, (list, MultiValue)):
                if all(isinstance(v, (int, float)) for v in value):
                    return {"numbers": list(value)}
                return {"text": "\\".join(str(v) for v in value)}
            return {"text": str(value)}

        def dump(ds):
            out = []
            for tag in sorted(ds._dict.keys()):
                raw = ds._dict[tag]
                raw_value = raw.value if isinstance(raw, RawDataElement) else None
                elem = ds[tag]
                entry = {"tag": "%08X" % int(tag), "vr": getattr(elem.VR, "value", elem.VR)}
                if elem.VR == "SQ":
                    entry["items"] = [dump(item) for item in elem.value]
                elif raw_value is not None:
                    entry["hex"] = bytes(raw_value).hex()
                else:
                    entry.update(value_of(elem.value))
                out.append(entry)
            return out

        ds = pydicom.dcmread(sys.argv[1], force=True)
        print(json.dumps({"implicit": ds.is_implicit_VR, "meta": dump(ds.file_meta), "dataset": dump(ds)}))
        """;

    public static JsonElement Dump(string path)
    {
        var json = TestFiles.RunChecked(TestFiles.Python, "-c", DumpScript, path);
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    /// <summary>Asserts that <paramref name="file"/> holds what pydicom reads from <paramref name="path"/>.</summary>
    public static void AssertSameAsPydicom(DicomFile file, string path)
    {
        var reference = Dump(path);
        var differences = new List<string>();
        var implicitVr = file.TransferSyntaxUid == TransferSyntaxes.ImplicitVRLittleEndian;
        if (reference.GetProperty("implicit").GetBoolean() != implicitVr)
        {
            differences.Add($"pydicom reads implicit VR = {reference.GetProperty("implicit").GetBoolean()}, we read {file.TransferSyntaxUid}");
        }
        Compare(file.Meta, reference.GetProperty("meta"), "meta", false, differences);
        Compare(file.Dataset, reference.GetProperty("dataset"), "", implicitVr, differences);
        Assert.True(differences.Count == 0, $"{Path.GetFileName(path)} differs from pydicom:\n" + string.Join('\n', differences.Take(40)));
    }

    private static void Compare(DicomDataset ours, JsonElement theirs, string path, bool implicitVr, List<string> differences)
    {
        var seen = new HashSet<DicomTag>();
        foreach (var entry in theirs.EnumerateArray())
        {
            var tag = DicomTag.Parse(entry.GetProperty("tag").GetString()!);
            seen.Add(tag);
            var where = $"{path}/{tag}";
            if (!ours.TryGet(tag, out var element))
            {
                differences.Add($"{where} missing (pydicom has it)");
                continue;
            }
            var vr = entry.GetProperty("vr").GetString()!;
            if (tag.IsPrivate && element.VR == DicomVR.UN && implicitVr)
            {
                // Known, accepted difference: pydicom has a private dictionary for implicit VR private tags, we keep
                // them as UN bytes (formats.md §1.7); the element must still be there.
                continue;
            }
            if (!vr.Contains(" or ", StringComparison.Ordinal) && vr != element.VR.ToString())
            {
                differences.Add($"{where} VR {element.VR}, pydicom {vr}");
            }
            if (entry.TryGetProperty("items", out var items))
            {
                var ourItems = element.ItemsOrEmpty;
                if (!element.IsSequence || ourItems.Count != items.GetArrayLength())
                {
                    differences.Add($"{where} has {(element.IsSequence ? ourItems.Count.ToString(System.Globalization.CultureInfo.InvariantCulture) : "no")} items, pydicom {items.GetArrayLength()}");
                    continue;
                }
                var index = 0;
                foreach (var item in items.EnumerateArray())
                {
                    // Items of UN sequences are implicit VR whatever the file's syntax.
                    Compare(ourItems[index], item, $"{where}[{index}]", implicitVr || vr == "UN" || element.VR == DicomVR.UN, differences);
                    index++;
                }
            }
            else if (entry.TryGetProperty("hex", out var hex))
            {
                var expected = Convert.FromHexString(hex.GetString()!);
                var actual = element.IsEncapsulated ? EncodeFragments(element) : element.Value.ToArray();
                if (!expected.AsSpan().SequenceEqual(actual))
                {
                    differences.Add($"{where} value {Describe(actual)} , pydicom {Describe(expected)}");
                }
            }
            else if (entry.TryGetProperty("text", out var text))
            {
                var actual = ours.GetText(tag) ?? "";
                if (actual != text.GetString()!.Trim(' ', '\0'))
                {
                    differences.Add($"{where} text '{actual}', pydicom '{text.GetString()}'");
                }
            }
            else if (entry.TryGetProperty("numbers", out var numbers))
            {
                var expected = numbers.EnumerateArray().Select(n => n.GetDouble()).ToArray();
                var actual = ours.GetDoubles(tag);
                if (!expected.SequenceEqual(actual))
                {
                    differences.Add($"{where} numbers [{string.Join(',', actual)}], pydicom [{string.Join(',', expected)}]");
                }
            }
        }
        foreach (var element in ours)
        {
            if (!seen.Contains(element.Tag))
            {
                differences.Add($"{path}/{element.Tag} read by us, not by pydicom");
            }
        }
    }

    /// <summary>pydicom keeps encapsulated pixel data as its item stream without the sequence delimiter.</summary>
    private static byte[] EncodeFragments(DicomElement element)
    {
        using var stream = new MemoryStream();
        foreach (var fragment in element.Fragments!)
        {
            stream.Write([0xFE, 0xFF, 0x00, 0xE0]);
            stream.Write(BitConverter.GetBytes((uint)fragment.Length));
            stream.Write(fragment.Span);
        }
        return stream.ToArray();
    }

    private static string Describe(byte[] bytes)
    {
        var text = new StringBuilder();
        text.Append(bytes.Length).Append(" bytes ");
        text.Append(Convert.ToHexString(bytes.AsSpan(0, Math.Min(bytes.Length, 24))));
        return text.ToString();
    }
}
