using System.Text.RegularExpressions;

namespace OrthancSeg.Worker.Workflows;

/// <summary>The main tags of a series that decide which workflows admit it.</summary>
internal sealed record SeriesFacts(string? Modality, string? SeriesDescription, string? BodyPart);

/// <summary>
/// Which series a workflow admits. Empty parts match everything; modality and body part compare
/// case-insensitively because scanners disagree on case ("Abdomen", "ABDOMEN").
/// </summary>
internal sealed class SelectionRule
{
    // A pathological pattern must not stall the series job for every workflow.
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(250);

    private readonly Regex? _description;

    public SelectionRule(string? modality, string? seriesDescriptionPattern, string? bodyPart)
    {
        Modality = Normalize(modality);
        SeriesDescriptionPattern = Normalize(seriesDescriptionPattern);
        BodyPart = Normalize(bodyPart);
        _description = SeriesDescriptionPattern is null ? null : Compile(SeriesDescriptionPattern);
    }

    public string? Modality { get; }

    public string? SeriesDescriptionPattern { get; }

    public string? BodyPart { get; }

    /// <summary>Compiles a series description pattern, or throws <see cref="ArgumentException"/> saying what is wrong with it.</summary>
    public static Regex Compile(string pattern)
    {
        try
        {
            return new Regex(pattern, RegexOptions.CultureInvariant, MatchTimeout);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"series description pattern '{pattern}' is not a valid regular expression: {e.Message}", nameof(pattern), e);
        }
    }

    public bool Matches(SeriesFacts series)
    {
        ArgumentNullException.ThrowIfNull(series);
        if (Modality is not null && !string.Equals(Modality, series.Modality?.Trim(), StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        if (BodyPart is not null && !string.Equals(BodyPart, series.BodyPart?.Trim(), StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        if (_description is not null)
        {
            try
            {
                return _description.IsMatch(series.SeriesDescription ?? string.Empty);
            }
            catch (RegexMatchTimeoutException)
            {
                return false;
            }
        }
        return true;
    }

    private static string? Normalize(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
