using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OrthancSeg.Worker.Orthanc;

/// <summary>Trust in Orthanc's HTTPS certificate anchored in one private CA (<see cref="OrthancOptions.CaFile"/>), not the system's.</summary>
internal static class OrthancTrust
{
    /// <summary>The certificates of a PEM file, or null when it holds none.</summary>
    public static X509Certificate2Collection? Load(string path)
    {
        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPemFile(path);
        }
        catch (CryptographicException)
        {
            return null;
        }
        return certificates.Count == 0 ? null : certificates;
    }

    /// <summary>TLS client options: the server's chain must end at one of <paramref name="anchors"/> and name the host asked for.</summary>
    public static SslClientAuthenticationOptions ClientOptions(X509Certificate2Collection anchors)
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            // A private CA publishes no revocation list.
            RevocationMode = X509RevocationMode.NoCheck,
        };
        policy.CustomTrustStore.AddRange(anchors);
        return new SslClientAuthenticationOptions { CertificateChainPolicy = policy };
    }
}
