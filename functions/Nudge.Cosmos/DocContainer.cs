using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.Azure.Cosmos;
using Nudge.Core.Storage;

namespace Nudge.Cosmos;

/// <summary>
/// One container through the SDK's stream API, with documents (de)serialised by System.Text.Json with
/// <see cref="StoreJson.Options"/>. The expected refusals of optimistic concurrency come back as values (null, false),
/// never as exceptions; anything else unexpected throws <see cref="CosmosException"/>.
/// </summary>
internal sealed class DocContainer(Container container)
{
    private static readonly JsonSerializerOptions Json = StoreJson.Options;

    /// <summary>Writes return no body: the ETag header is all the store needs back.</summary>
    private static readonly ItemRequestOptions NoContent = new() { EnableContentResponseOnWrite = false };

    public string Name => container.Id;

    /// <summary>The document, or null when there is none.</summary>
    public async Task<T?> ReadAsync<T>(string id, string pk, CancellationToken ct = default) where T : class
    {
        using var r = await container.ReadItemStreamAsync(id, new PartitionKey(pk), cancellationToken: ct);
        if (r.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        r.EnsureSuccessStatusCode();
        return await JsonSerializer.DeserializeAsync<T>(r.Content, Json, ct);
    }

    /// <summary>Creates the document; its new ETag, or null when one with its id exists (409).</summary>
    public async Task<string?> CreateAsync<T>(T doc, string pk, CancellationToken ct = default)
    {
        using var body = Serialize(doc);
        using var r = await container.CreateItemStreamAsync(body, new PartitionKey(pk), NoContent, ct);
        if (r.StatusCode == HttpStatusCode.Conflict)
        {
            return null;
        }

        r.EnsureSuccessStatusCode();
        return r.Headers.ETag;
    }

    /// <summary>Replaces the document if it is still at <paramref name="etag"/>; its new ETag, or null when it changed or is gone.</summary>
    public async Task<string?> ReplaceAsync<T>(T doc, string id, string pk, string etag, CancellationToken ct = default)
    {
        using var body = Serialize(doc);
        using var r = await container.ReplaceItemStreamAsync(body, id, new PartitionKey(pk),
            new ItemRequestOptions { IfMatchEtag = etag, EnableContentResponseOnWrite = false }, ct);
        if (r.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound)
        {
            return null;
        }

        r.EnsureSuccessStatusCode();
        return r.Headers.ETag;
    }

    /// <summary>Creates or replaces the document, whatever is there; its new ETag.</summary>
    public async Task<string> UpsertAsync<T>(T doc, string pk, CancellationToken ct = default)
    {
        using var body = Serialize(doc);
        using var r = await container.UpsertItemStreamAsync(body, new PartitionKey(pk), NoContent, ct);
        r.EnsureSuccessStatusCode();
        return r.Headers.ETag;
    }

    /// <summary>Deletes the document (only if still at <paramref name="etag"/>, when given); false when it was gone or changed.</summary>
    public async Task<bool> DeleteAsync(string id, string pk, string? etag = null, CancellationToken ct = default)
    {
        using var r = await container.DeleteItemStreamAsync(id, new PartitionKey(pk),
            etag is null ? null : new ItemRequestOptions { IfMatchEtag = etag }, ct);
        if (r.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.PreconditionFailed)
        {
            return false;
        }

        r.EnsureSuccessStatusCode();
        return true;
    }

    /// <summary>
    /// The query's results, fetched a page at a time as they are consumed. <paramref name="pk"/> scopes the query to
    /// one partition; the SQL must still filter on <c>c.pk</c> itself (the emulator ignores the option).
    /// </summary>
    public async IAsyncEnumerable<T> QueryAsync<T>(QueryDefinition query, string? pk, int pageSize = 100, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var options = new QueryRequestOptions { MaxItemCount = pageSize };
        if (pk is not null)
        {
            options.PartitionKey = new PartitionKey(pk);
        }

        using var it = container.GetItemQueryStreamIterator(query, null, options);
        while (it.HasMoreResults)
        {
            List<T> page;
            using (var r = await it.ReadNextAsync(ct))
            {
                r.EnsureSuccessStatusCode();
                page = await DocumentsAsync<T>(r.Content, ct);
            }

            foreach (var item in page)
            {
                yield return item;
            }
        }
    }

    /// <summary>Every result of the query.</summary>
    public async Task<List<T>> QueryAllAsync<T>(QueryDefinition query, string? pk, CancellationToken ct = default)
    {
        var list = new List<T>();
        await foreach (var item in QueryAsync<T>(query, pk, 1000, ct))
        {
            list.Add(item);
        }

        return list;
    }

    /// <summary>A <c>SELECT VALUE COUNT(1)</c> query's result (summed, should the SDK hand back one count per range).</summary>
    public async Task<long> CountAsync(QueryDefinition query, CancellationToken ct = default)
    {
        long total = 0;
        await foreach (var n in QueryAsync<long>(query, null, 1000, ct))
        {
            total += n;
        }

        return total;
    }

    /// <summary>The documents that exist among <paramref name="items"/> (id, partition), in no particular order.</summary>
    public async Task<List<T>> ReadManyAsync<T>(IEnumerable<(string Id, string Pk)> items, CancellationToken ct = default)
    {
        var keys = items.Distinct().Select(i => (i.Id, new PartitionKey(i.Pk))).ToList();
        if (keys.Count == 0)
        {
            return [];
        }

        using var r = await container.ReadManyItemsStreamAsync(keys, cancellationToken: ct);
        r.EnsureSuccessStatusCode();
        return await DocumentsAsync<T>(r.Content, ct);
    }

    private static MemoryStream Serialize<T>(T doc) => new(JsonSerializer.SerializeToUtf8Bytes(doc, Json), writable: false);

    /// <summary>The "Documents" array of a feed response.</summary>
    private static async Task<List<T>> DocumentsAsync<T>(Stream content, CancellationToken ct)
    {
        using var doc = await JsonDocument.ParseAsync(content, cancellationToken: ct);
        var list = new List<T>();
        if (doc.RootElement.TryGetProperty("Documents", out var documents))
        {
            foreach (var d in documents.EnumerateArray())
            {
                list.Add(d.Deserialize<T>(Json)!);
            }
        }

        return list;
    }
}
