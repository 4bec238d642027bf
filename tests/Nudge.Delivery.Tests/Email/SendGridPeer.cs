using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Nudge.Delivery.Tests.Email;

/// <summary>
/// A Kestrel stand-in for SendGrid's POST /v3/mail/send on 127.0.0.1: checks the bearer key as SendGrid does (401 with
/// its error body), records every request, and answers with <see cref="Respond"/> (202 with X-Message-Id by default).
/// </summary>
public sealed class SendGridPeer : IAsyncLifetime
{
    public const string ApiKey = "SG.test-key.s3cret-never-shown";

    private WebApplication? _app;

    public Uri BaseUrl { get; private set; } = null!;

    /// <summary>Requests received: path, Authorization header, content type and raw body.</summary>
    public ConcurrentQueue<(string Path, string? Authorization, string? ContentType, string Body)> Requests { get; } = new();

    /// <summary>Writes the answer for an authorised request; tests replace it.</summary>
    public Func<HttpContext, Task> Respond { get; set; } = Accept;

    public static Task Accept(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status202Accepted;
        context.Response.Headers["X-Message-Id"] = "sg-msg-1";
        return Task.CompletedTask;
    }

    /// <summary>An answer in SendGrid's error shape.</summary>
    public static Func<HttpContext, Task> Error(int status, string message, string? field = null, Action<IHeaderDictionary>? headers = null) => async context =>
    {
        context.Response.StatusCode = status;
        headers?.Invoke(context.Response.Headers);
        await context.Response.WriteAsJsonAsync(new { errors = new[] { new { message, field, help = (string?)null } } });
    };

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.MapPost("/v3/mail/send", async context =>
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync(context.RequestAborted);
            var authorization = context.Request.Headers.Authorization.ToString();
            Requests.Enqueue((context.Request.Path, authorization, context.Request.ContentType, body));
            if (authorization != "Bearer " + ApiKey)
            {
                await Error(401, "The provided authorization grant is invalid, expired, or revoked")(context);
                return;
            }

            await Respond(context);
        });
        await app.StartAsync();
        _app = app;
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        BaseUrl = new Uri(address);
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
