using Nudge.Host.Hosting;
using Nudge.Host.Simulation;

if (args is ["simulate", .. var rest])
{
    return await Simulator.RunAsync(rest, Console.Out, Console.Error);
}

try
{
    var app = await NudgeServer.BuildAsync(args);
    await NudgeServer.RunAsync(app);
    return 0;
}
catch (NudgeConfigurationException e)
{
    // One line per problem and no stack trace: the lines name the settings, which is all a user can act on.
    foreach (var problem in e.Problems)
    {
        Console.Error.WriteLine($"nudge: configuration error: {problem}");
    }

    return NudgeConfigurationException.ExitCode;
}
catch (NudgeSetupException e)
{
    Console.Error.WriteLine($"nudge: cannot start: {e.Message}");
    return NudgeConfigurationException.ExitCode;
}
