using System.Text.Json.Nodes;

namespace Nudge.Host.CustomHandler;

/// <summary>
/// What a custom handler answers the Functions host: 2xx <c>{"Outputs":{binding: value}, "Logs":[...]}</c>. Every output
/// value is a JSON object, or an array of them for several messages: never a bare string, which the host would try to
/// base64-decode (any string that happens to be valid base64 would turn into bytes).
/// </summary>
public sealed class FunctionResult
{
    private readonly JsonObject _outputs = [];
    private readonly JsonArray _logs = [];

    /// <summary>Queue messages for the output binding <paramref name="binding"/>; none adds no output at all.</summary>
    public FunctionResult Messages(string binding, IEnumerable<JsonObject> messages)
    {
        var array = new JsonArray([.. messages]);
        if (array.Count > 0)
        {
            _outputs[binding] = array;
        }

        return this;
    }

    /// <summary>One object output (the HTTP response "res").</summary>
    public FunctionResult Output(string binding, JsonObject value)
    {
        _outputs[binding] = value;
        return this;
    }

    /// <summary>A line the host writes to the function's log (Application Insights in Azure).</summary>
    public FunctionResult Log(string line)
    {
        _logs.Add(line);
        return this;
    }

    public IResult ToResult() => Results.Json(new JsonObject { ["Outputs"] = _outputs, ["Logs"] = _logs });

    /// <summary>
    /// A failed invocation: the host drops outputs on any non-2xx answer, and a Service Bus message is redelivered
    /// until its MaxDeliveryCount, then dead-lettered. The body is for people and tests; the host logs only the status.
    /// </summary>
    public static IResult Failure(int status, string error) =>
        Results.Json(new JsonObject { ["Outputs"] = new JsonObject(), ["Logs"] = new JsonArray(error), ["error"] = error }, statusCode: status);
}
