namespace OrthancSeg.Worker.Configuration;

/// <summary>
/// Secrets (tokens, passwords) live in files, never in configuration values, so they stay out of
/// process listings, environment dumps and logs. One reader gives every secret the same rules and messages.
/// </summary>
internal static class SecretFile
{
    private const UnixFileMode GroupOrOthers = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    /// <summary>What is wrong with the secret file named by <paramref name="key"/>, or null when it can be used.</summary>
    /// <param name="privateOnly">Refuse a file that its group or other users can read or write (bearer tokens).</param>
    public static string? Problem(string key, string? path, bool privateOnly = false)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            return $"{key} is not set: point it at a file that holds the secret (the stack keeps them in .stack/secrets/)";
        }
        try
        {
            return Read(key, path, privateOnly) is { Length: > 0 } ? null : $"{key}: file '{path}' is empty; write the secret into it";
        }
        catch (SecretFileException e)
        {
            return e.Message;
        }
    }

    /// <summary>Reads the secret, without the surrounding whitespace and line ends that editors and `echo` add.</summary>
    /// <param name="privateOnly">Refuse a file that its group or other users can read or write (bearer tokens).</param>
    public static string Read(string key, string path, bool privateOnly = false)
    {
        string text;
        try
        {
            if (privateOnly && !OperatingSystem.IsWindows() && File.GetUnixFileMode(path) is var mode && (mode & GroupOrOthers) != 0)
            {
                var who = (mode & (UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0 ? "other users" : "its group";
                throw new SecretFileException($"{key}: file '{path}' is open to {who} (mode {Convert.ToString((int)mode, 8)}), and anyone "
                    + $"who can read it holds the secret; make it private: `chmod 600 {path}`");
            }
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
