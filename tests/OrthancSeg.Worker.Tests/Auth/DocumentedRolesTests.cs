using System.Text.RegularExpressions;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Auth;

namespace OrthancSeg.Worker.Tests.Auth;

/// <summary>
/// docs/admin.md's table of methods and their minimum roles is what admins read before they hand out a token: it must
/// name every method of the contract with the role the worker enforces, and nothing else.
/// </summary>
public sealed partial class DocumentedRolesTests
{
    [Fact]
    public void The_role_table_in_the_admin_guide_is_the_contract()
    {
        var documented = DocumentedRoles();
        var enforced = MethodPolicy.FromContracts().Rules.ToDictionary(r => r.Method, r => r.MinimumRole);

        var undocumented = enforced.Keys.Except(documented.Keys).Order().ToList();
        var unknown = documented.Keys.Except(enforced.Keys).Order().ToList();
        var wrong = enforced.Where(e => documented.TryGetValue(e.Key, out var role) && role != e.Value)
            .Select(e => $"{e.Key}: documented {documented[e.Key]}, enforced {e.Value}").Order().ToList();

        Assert.True(undocumented.Count == 0, "docs/admin.md's role table lacks: " + string.Join(", ", undocumented));
        Assert.True(unknown.Count == 0, "docs/admin.md's role table names methods the contract does not have: " + string.Join(", ", unknown));
        Assert.True(wrong.Count == 0, "docs/admin.md's role table disagrees with the .proto: " + string.Join("; ", wrong));
    }

    /// <summary>
    /// Rows of the "| method | minimum role |" table: `Service/Method`, then `Method` names of the same service.
    /// </summary>
    private static Dictionary<string, Role> DocumentedRoles()
    {
        var lines = File.ReadAllLines(Path.Combine(RepositoryRoot(), "docs", "admin.md"));
        var start = Array.FindIndex(lines, l => l.Replace(" ", "", StringComparison.Ordinal) == "|method|minimumrole|");
        Assert.True(start >= 0, "docs/admin.md has no '| method | minimum role |' table");
        var roles = new Dictionary<string, Role>(StringComparer.Ordinal);
        foreach (var line in lines.Skip(start + 2).TakeWhile(l => l.StartsWith('|')))
        {
            var cells = line.Trim('|').Split('|');
            var role = Enum.Parse<Role>(cells[1].Trim(), ignoreCase: true);
            string? service = null;
            foreach (Match name in CodeSpan().Matches(cells[0]))
            {
                var text = name.Groups[1].Value;
                var slash = text.IndexOf('/', StringComparison.Ordinal);
                if (slash >= 0)
                {
                    service = text[..slash];
                    text = text[(slash + 1)..];
                }
                Assert.True(service is not null, $"docs/admin.md: '{line}' names a method before its service");
                Assert.True(roles.TryAdd($"/orthancseg.v1.{service}/{text}", role), $"docs/admin.md names {service}/{text} twice");
            }
        }
        return roles;
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "OrthancSeg.sln")))
        {
            directory = directory.Parent;
        }
        return directory?.FullName ?? throw new InvalidOperationException("no OrthancSeg.sln above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex("`([A-Za-z]+(?:/[A-Za-z]+)?)`")]
    private static partial Regex CodeSpan();
}
