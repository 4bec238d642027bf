using System.Net;
using System.Net.Sockets;

namespace Nudge.TestSupport;

/// <summary>Where the repository is, and loopback ports for the servers tests start.</summary>
public static class TestEnvironment
{
    /// <summary>The repository root: the first folder above the running binaries that holds Serverless.sln.</summary>
    /// <exception cref="DirectoryNotFoundException">No such folder (the binaries were copied out of the repository).</exception>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Serverless.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException($"no Serverless.sln above {AppContext.BaseDirectory}");
    }

    /// <summary>A port on 127.0.0.1 that was free a moment ago (what the Functions host and the emulators are given).</summary>
    public static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
