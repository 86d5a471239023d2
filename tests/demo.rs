//! `mpwatch demo`: the service's code path over a few simulated days, the ranking, the
//! chart, the queries it suggests, continuing a demo database, and refusing any other.

use assert_cmd::Command;
use rusqlite::Connection;

fn demo(db: &std::path::Path, days: u32) -> String {
    let output = Command::cargo_bin("mpwatch")
        .unwrap()
        .args(["--db", db.to_str().unwrap(), "demo", "--days", &days.to_string(), "--accounts", "4"])
        .env_remove("MPWATCH_CONFIG")
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "demo failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
}

#[test]
fn the_demo_crawls_ranks_draws_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let first = demo(&db, 4);

    // The service renewed a lapsed credential and went on.
    assert!(first.contains("credential demo-phone-1 expired"), "{first}");
    assert!(first.contains("renewed as demo-phone-2"), "{first}");
    assert!(first.contains("ranking by wci-v14.2") && first.contains("ranking by nri"), "{first}");
    assert!(first.contains("环球科学"), "the publishers are ranked: {first}");
    let chart = dir.path().join("demo-reads.png");
    assert!(std::fs::metadata(&chart).unwrap().len() > 10_000, "the chart is drawn");

    let conn = Connection::open(&db).unwrap();
    let articles = count(&conn, "SELECT count(*) FROM articles WHERE status = 'ok'");
    let snapshots = count(&conn, "SELECT count(*) FROM metric_snapshots");
    assert!(articles > 50, "{articles} articles");
    assert!(snapshots > articles, "{snapshots} snapshots for {articles} articles: the ladder ran");
    assert!(count(&conn, "SELECT count(*) FROM metric_snapshots WHERE rung_seconds = 86400") > 0, "24 h rungs taken");
    assert!(count(&conn, "SELECT count(*) FROM crawl_runs WHERE job = 'index' OR job = 'metrics'") > 0);
    assert!(count(&conn, "SELECT count(*) FROM index_values") > 0, "indices computed");
    // The verification episode made the crawler cool down (recorded in the fetch log).
    assert!(count(&conn, "SELECT count(*) FROM fetch_log WHERE outcome IN ('verification', 'throttled')") > 0);

    // Every query the demo suggests runs as printed.
    let queries: Vec<&str> = first
        .lines()
        .filter_map(|line| line.trim().strip_prefix("sqlite3 "))
        .filter_map(|rest| rest.split_once(" \"").map(|(_, sql)| sql.trim_end_matches('"')))
        .collect();
    assert_eq!(queries.len(), 3, "{first}");
    for sql in queries {
        let mut statement = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let mut rows = statement.query([]).unwrap();
        assert!(rows.next().unwrap().is_some(), "{sql} returns rows");
    }
    drop(conn);

    // --db continues a demo database where it stopped.
    let reached = |db: &std::path::Path| -> i64 {
        let text = std::fs::read_to_string(format!("{}.demo.json", db.display())).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["reached"].as_i64().unwrap()
    };
    let before = reached(&db);
    let second = demo(&db, 1);
    assert!(second.contains("continuing"), "{second}");
    assert_eq!(reached(&db), before + 86_400);
    let conn = Connection::open(&db).unwrap();
    assert!(count(&conn, "SELECT count(*) FROM articles WHERE status = 'ok'") > articles);
}

#[test]
fn the_demo_never_writes_into_a_database_it_did_not_make() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mine.db");
    std::fs::write(&db, b"").unwrap();
    let output = Command::cargo_bin("mpwatch")
        .unwrap()
        .args(["--db", db.to_str().unwrap(), "demo", "--days", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("was not made by `mpwatch demo`"), "{stderr}");
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "untouched");
}

#[test]
fn the_demo_ignores_mpwatch_db_and_names_its_own_directory() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.db");
    std::fs::write(&real, b"").unwrap();
    let temp = dir.path().join("tmp");
    std::fs::create_dir(&temp).unwrap();
    let output = Command::cargo_bin("mpwatch")
        .unwrap()
        .args(["demo", "--days", "1", "--accounts", "1"])
        .env("MPWATCH_DB", &real)
        .env("TMPDIR", &temp)
        .env_remove("MPWATCH_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("MPWATCH_DB is not used by the demo"), "{stdout}");
    assert_eq!(std::fs::metadata(&real).unwrap().len(), 0, "the real database is untouched");
    let made: Vec<_> = std::fs::read_dir(&temp).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(made.len(), 1, "{made:?}");
    assert!(made[0].join("mpwatch.db").is_file());
    assert!(stdout.contains(&made[0].display().to_string()), "the directory is named: {stdout}");
}
