//! Every query of docs/queries.md runs as written on a demo database.

use assert_cmd::Command;
use rusqlite::{Connection, OpenFlags};

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
}
