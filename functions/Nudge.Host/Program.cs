using Nudge.Host.Hosting;

var app = await NudgeServer.BuildAsync(args);
await app.RunAsync();
