using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Nudge.Host.Hosting;

namespace Nudge.Host.Tests;

/// <summary>
/// A real HTTP server on 127.0.0.1 (a free port) that records every POST (body, headers) and answers with the status
/// <see cref="StatusFor"/> gives for the request's number (1-based): alert and reporting-webhook receivers in tests.
/// </summary>
public sealed class LoopbackReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _count;

    private LoopbackReceiver(WebApplication app) => _app = app;

    public sealed record Request(int Number, byte[] Body, IReadOnlyDictionary<string, string> Headers, int Status);

    public ConcurrentQueue<Request> Requests { get; } = new();

    public Func<int, int> StatusFor { get; set; } = _ => 200;

    public Uri Url => new(NudgeServer.BaseAddress(_app), "/hook");

    public static async Task<LoopbackReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var receiver = new LoopbackReceiver(app);
        app.MapPost("/hook", async (HttpContext c) =>
        {
            using var ms = new MemoryStream();
            await c.Request.Body.CopyToAsync(ms);
            var n = Interlocked.Increment(ref receiver._count);
            var status = receiver.StatusFor(n);
            receiver.Requests.Enqueue(new Request(n, ms.ToArray(), c.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase), status));
            return Results.StatusCode(status);
        });
        await app.StartAsync();
        return receiver;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
