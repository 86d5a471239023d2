//! Every query of docs/queries.md runs as written on a demo database.

use assert_cmd::Command;
use rusqlite::{Connection, OpenFlags};

/// The first column of every row of `sql`, as text.
fn texts(conn: &Connection, sql: &str) -> Vec<String> {
    conn.prepare(sql).unwrap().query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn every_documented_query_runs_on_a_demo_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let output = Command::cargo_bin("mpwatch")
        .unwrap()
        .args(["--db", db.to_str().unwrap(), "demo", "--days", "9", "--accounts", "4"])
        .env_remove("MPWATCH_CONFIG")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/queries.md")).unwrap();
    let queries: Vec<&str> = text.split("```sql\n").skip(1).filter_map(|block| block.split("```").next()).collect();
    assert!(queries.len() >= 10, "{} queries", queries.len());
    let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut empty = Vec::new();
    for sql in &queries {
        let mut statement = conn.prepare(sql).unwrap_or_else(|e| panic!("{e}:\n{sql}"));
        let columns = statement.column_count();
        let mut rows = statement.query([]).unwrap();
        let mut count = 0;
        while let Some(row) = rows.next().unwrap_or_else(|e| panic!("{e}:\n{sql}")) {
            for i in 0..columns {
                let _: rusqlite::types::Value = row.get(i).unwrap();
            }
            count += 1;
        }
        if count == 0 {
            empty.push(*sql);
        }
    }
    // Nine days of a small world may have no deletion yet; everything else has rows.
    assert!(empty.len() <= 1, "queries without rows on the demo database:\n{}", empty.join("\n"));

    // Every view column holds one kind of value (what DuckDB and pandas type it by);
    // times are unix integers, local times text, and each local time has its unix column.
    let views = texts(&conn, "SELECT name FROM sqlite_master WHERE type = 'view'");
    assert!(views.len() >= 3);
    for view in &views {
        let columns = texts(&conn, &format!("SELECT name FROM pragma_table_info('{view}')"));
        for column in &columns {
            let kinds = texts(
                &conn,
                &format!("SELECT DISTINCT typeof(\"{column}\") FROM {view} WHERE \"{column}\" IS NOT NULL"),
            );
            assert!(kinds.len() <= 1, "{view}.{column} holds {kinds:?}");
            if let Some(local) = column.strip_suffix("_shanghai") {
                assert!(kinds.iter().all(|k| k == "text"), "{view}.{column}: {kinds:?}");
                let unix = local;
                assert!(columns.iter().any(|c| c == unix), "{view}.{column} without its unix column {unix}");
                let mismatched: i64 = conn
                    .query_row(
                        &format!(
                            "SELECT count(*) FROM {view} WHERE \"{column}\" IS NOT datetime({unix} + 28800, 'unixepoch')"
                        ),
                        [],
                        |row| row.get(0),
                    )
                    .unwrap();
                assert_eq!(mismatched, 0, "{view}.{column} differs from SQLite's datetime()");
            } else if column.ends_with("_at") {
                assert!(kinds.iter().all(|k| k == "integer"), "{view}.{column}: {kinds:?}");
            }
        }
    }
}

#[test]
fn the_datasette_metadata_names_only_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mpwatch.db");
    let store = mpwatch_store::Store::open(&db, &mpwatch_store::StoreOptions::default()).unwrap();
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/datasette.json")).unwrap();
    let metadata: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tables = metadata["databases"]["mpwatch"]["tables"].as_object().unwrap();
    for (table, settings) in tables {
        let columns = texts(
            store.connection().sqlite().expect("a SQLite file"),
            &format!("SELECT name FROM pragma_table_info('{table}')"),
        );
        assert!(!columns.is_empty(), "docs/datasette.json names {table}, which does not exist");
        let mut named: Vec<&str> = Vec::new();
        for key in ["columns", "units"] {
            if let Some(map) = settings[key].as_object() {
                named.extend(map.keys().map(String::as_str));
            }
        }
        for key in ["label_column", "sort_desc"] {
            if let Some(column) = settings[key].as_str() {
                named.push(column);
            }
        }
        for column in named {
            assert!(columns.iter().any(|c| c == column), "docs/datasette.json: {table}.{column} does not exist");
        }
    }
}
