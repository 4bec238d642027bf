using Microsoft.Azure.Cosmos;

namespace Nudge.Cosmos.Tests;

/// <summary>Thrown instead of sending a request: the process "dies" just before that write reaches Cosmos DB.</summary>
public sealed class SimulatedCrashException() : Exception("simulated crash before a write");

/// <summary>
/// A handler in the client's request pipeline that stops one chosen write from being sent, as if the process died
/// right before it: the store's later steps never run, and the test then looks at what the earlier steps left.
/// </summary>
public sealed class FaultInjector : RequestHandler
{
    private Func<RequestMessage, bool>? _crashBefore;

    /// <summary>Crash before the next write (create, upsert, replace or delete) of a document in <paramref name="container"/>.</summary>
    public void CrashBeforeNextWrite(string container, string? method = null) => _crashBefore = r =>
        IsDocumentWrite(r, container) && (method is null || r.Method.Method == method);

    public override Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
    {
        if (_crashBefore is { } crash && crash(request))
        {
            _crashBefore = null;
            throw new SimulatedCrashException();
        }

        return base.SendAsync(request, cancellationToken);
    }

    /// <summary>
    /// A create, upsert, replace or delete of a document in <paramref name="container"/>: creates and upserts are posted
    /// to the container's own address (dbs/{db}/colls/{container}), the others go to dbs/{db}/colls/{container}/docs/{id}.
    /// </summary>
    public static bool IsDocumentWrite(RequestMessage r, string container)
    {
        var uri = r.RequestUri.OriginalString.TrimEnd('/');
        return r.Method != HttpMethod.Get
            && !string.Equals(r.Headers["x-ms-documentdb-isquery"], "true", StringComparison.OrdinalIgnoreCase)
            && !string.Equals(r.Headers["x-ms-cosmos-is-query-plan-request"], "true", StringComparison.OrdinalIgnoreCase)
            && (r.Method == HttpMethod.Post
                ? uri.EndsWith($"/colls/{container}", StringComparison.Ordinal)
                : uri.Contains($"/colls/{container}/docs/", StringComparison.Ordinal));
    }
}
