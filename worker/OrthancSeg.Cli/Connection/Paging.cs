namespace OrthancSeg.Cli.Connection;

/// <summary>The admin API's List calls page with page_token/next_page_token; the CLI shows whole lists.</summary>
internal static class Paging
{
    /// <summary>
    /// Asks for pages (the token of the next one passed in, "" first) until the worker gives no next token,
    /// or until <paramref name="limit"/> items are in hand (0 = all).
    /// </summary>
    public static async Task<List<T>> AllAsync<T>(Func<string, Task<(IEnumerable<T> Items, string NextPageToken)>> page, int limit = 0)
    {
        var all = new List<T>();
        var token = "";
        do
        {
            var (items, next) = await page(token);
            all.AddRange(items);
            token = next;
        }
        while (token.Length > 0 && (limit == 0 || all.Count < limit));
        return limit == 0 ? all : all.Take(limit).ToList();
    }
}
