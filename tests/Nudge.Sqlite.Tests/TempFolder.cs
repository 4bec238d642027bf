using Microsoft.Data.Sqlite;

namespace Nudge.Sqlite.Tests;

/// <summary>A fresh folder under the system temp folder for one test's database files, deleted afterwards.</summary>
internal sealed class TempFolder
{
    public string Path { get; } = Directory.CreateTempSubdirectory("nudge-sqlite-tests-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Closes pooled connections to the folder's databases and deletes the folder.</summary>
    public void Delete()
    {
        foreach (var db in Directory.EnumerateFiles(Path, "*.db"))
        {
            using var c = new SqliteConnection(SqliteDb.ConnectionString(db));
            SqliteConnection.ClearPool(c);
        }

        Directory.Delete(Path, recursive: true);
    }
}
