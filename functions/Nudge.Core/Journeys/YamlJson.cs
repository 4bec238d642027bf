using System.Globalization;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Nudge.Core.Journeys;

/// <summary>
/// Reads YAML into JSON nodes and remembers the line of every node by its path (<c>steps[2].send.channel</c>), so
/// validation errors can point into the file. Plain scalars become booleans, numbers or null as YAML 1.2's core
/// schema says; quoted scalars stay strings.
/// </summary>
public static class YamlJson
{
    public static (JsonNode? Root, Dictionary<string, int> Lines) Parse(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        var lines = new Dictionary<string, int>(StringComparer.Ordinal);
        if (stream.Documents.Count == 0)
        {
            return (null, lines);
        }

        return (Convert(stream.Documents[0].RootNode, "", lines), lines);
    }

    private static JsonNode? Convert(YamlNode node, string path, Dictionary<string, int> lines)
    {
        lines[path] = (int)node.Start.Line;
        switch (node)
        {
            case YamlMappingNode map:
                {
                    var o = new JsonObject();
                    foreach (var (k, v) in map.Children)
                    {
                        var key = (k as YamlScalarNode)?.Value ?? throw new YamlException(k.Start, k.End, "mapping keys must be plain text");
                        if (o.ContainsKey(key))
                        {
                            throw new YamlException(k.Start, k.End, $"duplicate key '{key}'");
                        }

                        o[key] = Convert(v, path.Length == 0 ? key : $"{path}.{key}", lines);
                    }

                    return o;
                }

            case YamlSequenceNode seq:
                {
                    var a = new JsonArray();
                    var i = 0;
                    foreach (var item in seq.Children)
                    {
                        a.Add(Convert(item, $"{path}[{i++}]", lines));
                    }

                    return a;
                }

            case YamlScalarNode s:
                return Scalar(s);
            default:
                throw new YamlException(node.Start, node.End, "aliases and anchors are not supported");
        }
    }

    private static JsonNode? Scalar(YamlScalarNode s)
    {
        var v = s.Value ?? "";
        if (s.Style != ScalarStyle.Plain)
        {
            return JsonValue.Create(v);
        }

        switch (v)
        {
            case "" or "~" or "null" or "Null" or "NULL": return null;
            case "true" or "True" or "TRUE": return JsonValue.Create(true);
            case "false" or "False" or "FALSE": return JsonValue.Create(false);
        }

        if (long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
        {
            return JsonValue.Create(l);
        }

        if (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && !double.IsInfinity(d))
        {
            return JsonValue.Create(d);
        }

        return JsonValue.Create(v);
    }
}
