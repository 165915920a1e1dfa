using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace OrthancSeg.Worker.Persistence;

/// <summary>One numbered schema change, e.g. Persistence/Migrations/0001_foundation.sql.</summary>
internal sealed partial record Migration(int Version, string Name, string Sql)
{
    /// <summary>SHA-256 of the script, recorded so that an edited, already-applied script is noticed.</summary>
    public string Checksum { get; } = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Sql)));

    /// <summary>The migrations embedded in the worker, in the order they must run.</summary>
    public static IReadOnlyList<Migration> Embedded { get; } = Load(typeof(Migration).Assembly);

    public static IReadOnlyList<Migration> Load(Assembly assembly)
    {
        var migrations = new List<Migration>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            if (!resource.EndsWith(".sql", StringComparison.Ordinal) || !resource.Contains(".Migrations.", StringComparison.Ordinal))
            {
                continue;
            }
            var match = FileName().Match(resource);
            if (!match.Success)
            {
                throw new InvalidOperationException(
                    $"Migration resource '{resource}' is not named NNNN_snake_case_name.sql; rename it so its order is explicit");
            }
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            migrations.Add(new Migration(int.Parse(match.Groups["version"].Value, System.Globalization.CultureInfo.InvariantCulture),
                match.Groups["name"].Value, reader.ReadToEnd()));
        }
        migrations.Sort((a, b) => a.Version.CompareTo(b.Version));
        var duplicate = migrations.GroupBy(m => m.Version).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new InvalidOperationException(
                $"Two migrations share version {duplicate.Key}: {string.Join(", ", duplicate.Select(m => m.Name))}; give one of them the next free number");
        }
        return migrations;
    }

    [GeneratedRegex(@"\.(?<version>\d{4})_(?<name>[a-z0-9_]+)\.sql$")]
    private static partial Regex FileName();
}
