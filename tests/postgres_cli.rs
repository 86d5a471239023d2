//! `mpwatch` with a PostgreSQL database (issue 15), against the throwaway cluster named
//! by `MPWATCH_TEST_POSTGRES_URL` (`.ci/run` starts one; the test skips without it):
//! a demo history copied SQLite -> PostgreSQL -> SQLite arrives identical, and the
//! commands that do not run on PostgreSQL yet say so in one line and touch nothing.

mod common;

use std::path::Path;
use std::process::Command;

use common::mpwatch_on;
use mpwatch_pg::test_database::TestDatabase;

fn mpwatch(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mpwatch"))
        .args(args)
        .current_dir(cwd)
        .env_remove("MPWATCH_CONFIG")
        .env_remove("MPWATCH_DB")
        .output()
        .expect("run mpwatch")
}

#[test]
fn a_demo_history_round_trips_through_postgres_and_other_commands_refuse_cleanly() {
    let Some(database) =
        TestDatabase::create("a_demo_history_round_trips_through_postgres_and_other_commands_refuse_cleanly")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = dir.path().join("demo.db");
    mpwatch_on(&demo, &["demo", "--days", "4", "--accounts", "4"]);
    let url = database.url();

    let copied = mpwatch(&["db", "copy", "--from", "demo.db", "--to", url], dir.path());
    assert!(copied.status.success(), "{}", String::from_utf8_lossy(&copied.stderr));
    let said = String::from_utf8_lossy(&copied.stdout);
    assert!(said.contains("every table has the same rows and checksum on both sides"), "{said}");

    let back = mpwatch(&["db", "copy", "--from", url, "--to", "back.db", "--json"], dir.path());
    assert!(back.status.success(), "{}", String::from_utf8_lossy(&back.stderr));
    let back: serde_json::Value = serde_json::from_slice(&back.stdout).expect("json");

    // The three databases print the same rows and checksums, table by table.
    let sums = |database: &str| -> serde_json::Value {
        let output = mpwatch(&["--db", database, "db", "checksums", "--json"], dir.path());
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("json")["tables"].clone()
    };
    let original = sums("demo.db");
    assert_eq!(original, sums(url));
    assert_eq!(original, sums("back.db"));
    assert_eq!(original, back["tables"]);
    let rows = |table: &str| {
        original.as_array().expect("tables").iter().find(|entry| entry["table"] == table).expect("table")["rows"]
            .as_u64()
            .expect("rows")
    };
    assert!(rows("articles") > 0 && rows("metric_snapshots") > 0 && rows("index_values") > 0);

    // The copy back is a working mpwatch database: the report reads the same.
    let report = |db: &str| mpwatch_on(&dir.path().join(db), &["report", "--index", "nri", "--format", "json"]);
    assert_eq!(report("demo.db"), report("back.db"));

    let stats = mpwatch(&["--db", url, "db", "stats", "--json"], dir.path());
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).expect("stats json");
    assert_eq!(stats["schema_version"], 14);
    assert_eq!(stats["tables"]["articles"].as_u64(), Some(rows("articles")));

    // Commands that do not run on PostgreSQL yet: one line, exit 1, no file named after
    // the URL.
    for command in [&["crawl"][..], &["status"], &["report"], &["serve"], &["run"], &["account", "list"]] {
        let mut args = vec!["--db", url];
        args.extend_from_slice(command);
        let output = mpwatch(&args, dir.path());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{command:?}: {stderr}");
        assert!(stderr.contains("does not run on PostgreSQL yet"), "{command:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{command:?}: {stderr}");
    }
    let entries: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(entries.iter().all(|name| !name.starts_with("postgres")), "{entries:?}");
}
