using OrthancSeg.Dicom;
using OrthancSeg.Worker.Orthanc;

namespace OrthancSeg.Worker.Tests.Orthanc;

public sealed class LimitsOptionsTests
{
    [Fact]
    public void Defaults_are_valid_and_are_the_codec_defaults()
    {
        var options = new LimitsOptions();

        Assert.True(new LimitsOptionsValidator().Validate(null, options).Succeeded);
        Assert.Equal(DicomLimits.Default, options.ToDicomLimits());
        Assert.Equal(2L << 30, options.MaxVolumeBytes);
    }

    [Fact]
    public void Limits_below_a_mebibyte_or_beyond_one_buffer_are_refused_with_their_setting_named()
    {
        var result = new LimitsOptionsValidator().Validate(null, new LimitsOptions { MaxVolumeBytes = 1000, MaxInflatedBytes = long.MaxValue });

        Assert.True(result.Failed);
        Assert.Contains("OrthancSeg:Limits:MaxVolumeBytes must be", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("OrthancSeg:Limits:MaxInflatedBytes must be", result.FailureMessage, StringComparison.Ordinal);
    }
}
