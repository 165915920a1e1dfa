namespace OrthancSeg.Worker.Configuration;

/// <summary>
/// Secrets (tokens, passwords) live in files, never in configuration values, so they stay out of
/// process listings, environment dumps and logs. One reader gives every secret the same rules and messages.
/// </summary>
internal static class SecretFile
{
    /// <summary>What is wrong with the secret file named by <paramref name="key"/>, or null when it can be used.</summary>
    public static string? Problem(string key, string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            return $"{key} is not set: point it at a file that holds the secret (the stack keeps them in .stack/secrets/)";
        }
        try
        {
            return Read(key, path) is { Length: > 0 } ? null : $"{key}: file '{path}' is empty; write the secret into it";
        }
        catch (SecretFileException e)
        {
            return e.Message;
        }
    }

    /// <summary>Reads the secret, without the surrounding whitespace and line ends that editors and `echo` add.</summary>
    public static string Read(string key, string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new SecretFileException(
                $"{key}: file '{path}' was not found; create it (e.g. `openssl rand -hex 32 > {path} && chmod 600 {path}`) or fix the path", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SecretFileException($"{key}: file '{path}' cannot be read: {e.Message}", e);
        }
        var secret = text.Trim();
        return secret.Length > 0 ? secret : throw new SecretFileException($"{key}: file '{path}' is empty; write the secret into it");
    }
}

internal sealed class SecretFileException(string message, Exception? inner = null) : Exception(message, inner);
