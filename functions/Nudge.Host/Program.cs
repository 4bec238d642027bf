using Nudge.Host.Hosting;
using Nudge.Host.Simulation;

if (args is ["simulate", .. var rest])
{
    return await Simulator.RunAsync(rest, Console.Out, Console.Error);
}

var app = await NudgeServer.BuildAsync(args);
await app.RunAsync();
return 0;
