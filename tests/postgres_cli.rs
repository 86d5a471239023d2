//! `mpwatch` with a PostgreSQL database (issue 15), against the throwaway cluster named
//! by `MPWATCH_TEST_POSTGRES_URL` (`.ci/run` starts one; the tests skip without it): a
//! demo history copied SQLite -> PostgreSQL -> SQLite arrives identical, the commands
//! read the same from both, the indices computed on each agree, and a crawl into
//! PostgreSQL survives a kill.

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
fn a_demo_history_round_trips_through_postgres_and_reads_the_same() {
    let Some(database) = TestDatabase::create("a_demo_history_round_trips_through_postgres_and_reads_the_same") else {
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
    assert_eq!(stats["schema_version"], mpwatch_store::LATEST_SCHEMA_VERSION);
    let articles =
        stats["tables"].as_array().expect("tables").iter().find(|pair| pair[0] == "articles").expect("articles");
    assert_eq!(articles[1].as_u64(), Some(rows("articles")));

    // The commands read the same from either backend.
    let same = |args: &[&str]| {
        let mut on_postgres = vec!["--db", url];
        on_postgres.extend_from_slice(args);
        let mut on_sqlite = vec!["--db", "demo.db"];
        on_sqlite.extend_from_slice(args);
        let (a, b) = (mpwatch(&on_postgres, dir.path()), mpwatch(&on_sqlite, dir.path()));
        assert!(a.status.success(), "{args:?} on PostgreSQL: {}", String::from_utf8_lossy(&a.stderr));
        assert!(
            b.status.success() && !b.stdout.is_empty(),
            "{args:?} on SQLite: {}",
            String::from_utf8_lossy(&b.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&a.stdout), String::from_utf8_lossy(&b.stdout), "{args:?}");
    };
    same(&["report", "--index", "nri", "--format", "csv"]);
    same(&["report", "--period", "week", "--index", "wci-v14.2", "--format", "json"]);
    same(&["articles", "--json"]);
    same(&["export", "snapshots", "--format", "jsonl"]);
    same(&["export", "rankings", "--format", "csv"]);
    same(&["account", "list", "--json"]);

    // The indices computed again from nothing on each backend: the same values (to
    // 1e-9; they come out bit for bit the same).
    let demo_path = demo.to_string_lossy().into_owned();
    for db in [url, demo_path.as_str()] {
        let store = mpwatch_store::Store::open(Path::new(db), &Default::default()).expect("open");
        store
            .connection()
            .execute_batch("DELETE FROM index_values; DELETE FROM index_periods; DELETE FROM index_state;")
            .expect("clear the indices");
        drop(store);
        let output = mpwatch(&["--db", db, "index", "--full"], dir.path());
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let read = |db: &str, sql: &str| -> Vec<Vec<rusqlite::types::Value>> {
        let store =
            mpwatch_store::Store::open_read_only(Path::new(db), std::time::Duration::from_secs(5)).expect("open");
        let mut statement = store.connection().prepare(sql).expect("prepare");
        let columns = statement.column_count();
        statement
            .query_map([], |row| (0..columns).map(|at| row.get::<_, rusqlite::types::Value>(at)).collect())
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    for sql in [
        "SELECT account_id, period_kind, period_start, index_name, value, rank, rank_change FROM index_values ORDER BY 1, 2, 3, 4",
        "SELECT account_id, period_kind, period_start, period_end, first_day, d, n, pushes, headlines, reads, reads_headline,
                reads_max, wows, likes, shares, comments, engagement_rate, read_rate, reads_gained_per_day, late_articles,
                provisional, missing_articles FROM index_periods ORDER BY 1, 2, 3",
    ] {
        let (postgres, sqlite) = (read(url, sql), read(&demo.to_string_lossy(), sql));
        assert!(!sqlite.is_empty());
        assert_eq!(postgres.len(), sqlite.len(), "{sql}");
        for (a, b) in postgres.iter().zip(&sqlite) {
            for (x, y) in a.iter().zip(b) {
                use rusqlite::types::Value::Real;
                match (x, y) {
                    (Real(x), Real(y)) => assert!((x - y).abs() <= 1e-9 * y.abs().max(1.0), "{x} != {y} in {a:?}"),
                    _ => assert_eq!(x, y, "{a:?} != {b:?}"),
                }
            }
        }
    }

    // The server answers the same from either backend (feeds with title filters,
    // rankings, an account, the status page's numbers aside from the database line).
    let serve = |db: &str| -> (std::process::Child, String) {
        // A free port, then the server on it; ready once it accepts a connection.
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .to_string();
        let child = Command::new(env!("CARGO_BIN_EXE_mpwatch"))
            .args(["--db", db, "serve", "--listen", &address])
            .current_dir(dir.path())
            .env_remove("MPWATCH_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("serve");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(std::time::Instant::now() < deadline, "the server on {db} never listened");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        (child, address)
    };
    let get = |address: &str, path: &str| -> String {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("answer");
        let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        body.replace(address, "ADDRESS")
    };
    let (mut on_postgres, postgres_address) = serve(url);
    let (mut on_sqlite, sqlite_address) = serve(&demo_path);
    for path in [
        "/feeds/all.json?limit=50",
        "/feeds/all.json?title_include=%E7%A7%91%E5%AD%A6|%E5%9F%BA%E5%9B%A0&title_exclude=%E7%AC%AC3%E6%9C%9F",
        "/feeds/all.atom?min_reads=10000&original_only=1",
        "/rankings.json",
        "/rankings.json?period=week&index=nri",
        "/account/1.json",
    ] {
        assert_eq!(get(&postgres_address, path), get(&sqlite_address, path), "{path}");
    }
    let _ = (on_postgres.kill(), on_sqlite.kill(), on_postgres.wait(), on_sqlite.wait());

    // A password in the URL is never shown (the throwaway cluster trusts local users,
    // so it is not even checked).
    let with_password = format!("{url}&password=hunter2-secret");
    for args in [&["status"][..], &["db", "path"], &["db", "stats"], &["config", "check"], &["status", "--json"]] {
        let mut all = vec!["--db", with_password.as_str()];
        all.extend_from_slice(args);
        let output = mpwatch(&all, dir.path());
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "{args:?}: {text}");
        assert!(!text.contains("hunter2"), "{args:?}: {text}");
        assert!(
            text.contains("password=***") || args == ["config", "check"] && text.contains("***"),
            "{args:?}: {text}"
        );
    }
}

/// A crawl into PostgreSQL against the simulator, killed mid-run and started again:
/// every article of the world once, nothing lost, no rung twice.
#[test]
fn a_crawl_into_postgres_survives_a_kill_and_stores_the_world_once() {
    let Some(database) = TestDatabase::create("a_crawl_into_postgres_survives_a_kill_and_stores_the_world_once") else {
        return;
    };
    let url = database.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = common::SimProcess::start(dir.path(), 4, 8);
    let config = dir.path().join("mpwatch.toml");
    // The simulator's world (accounts, sources) into PostgreSQL.
    let copied = mpwatch(&["db", "copy", "--from", "mpwatch.db", "--to", url], dir.path());
    assert!(copied.status.success(), "{}", String::from_utf8_lossy(&copied.stderr));
    let text = std::fs::read_to_string(&config).expect("config");
    let slow = text.replacen(
        "[rate_limits.article_page]\ninterval = \"2ms\"\nburst = 20",
        "[rate_limits.article_page]\ninterval = \"40ms\"\nburst = 1",
        1,
    );
    assert_ne!(slow, text);
    std::fs::write(&config, slow).expect("config");
    let count = |sql: &str| -> i64 {
        let store =
            mpwatch_store::Store::open_read_only(Path::new(url), std::time::Duration::from_secs(5)).expect("open");
        store.connection().query_row(sql, [], |row| row.get(0)).expect("count")
    };

    let mut crawl = Command::new(env!("CARGO_BIN_EXE_mpwatch"))
        .arg("--config")
        .arg(&config)
        .args(["--db", url, "crawl"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("crawl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while count("SELECT count(*) FROM articles WHERE status != 'pending'") < 10 {
        assert!(std::time::Instant::now() < deadline, "the crawl stored nothing");
        assert!(crawl.try_wait().expect("wait").is_none(), "the crawl ended before it could be killed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    crawl.kill().expect("kill");
    crawl.wait().expect("wait");
    let stored_at_kill = count("SELECT count(*) FROM articles WHERE status != 'pending'");

    let output = Command::new(env!("CARGO_BIN_EXE_mpwatch"))
        .arg("--config")
        .arg(&config)
        .args(["--db", url, "crawl"])
        .output()
        .expect("crawl again");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let truth = common::truth(&sim.base);
    let articles = truth["articles"].as_array().expect("articles");
    let stored = count("SELECT count(*) FROM articles");
    assert!(stored_at_kill < stored, "the kill came too late to test anything ({stored_at_kill} of {stored})");
    assert_eq!(stored, articles.len() as i64, "every article of the world, once");
    assert_eq!(count("SELECT count(*) FROM articles WHERE status = 'pending'"), 0, "nothing lost");
    assert_eq!(count("SELECT count(*) FROM work_queue WHERE state = 'leased'"), 0, "dead leases were taken back");
    assert_eq!(count("SELECT count(*) FROM crawl_runs WHERE result = 'running'"), 0);
    assert_eq!(count("SELECT count(*) FROM crawl_runs WHERE result = 'interrupted'"), 1);
    assert_eq!(
        count(
            "SELECT count(*) FROM (SELECT article_id, rung_seconds FROM metric_snapshots GROUP BY 1, 2 HAVING count(*) > 1) AS twice"
        ),
        0
    );
    let live = articles.iter().filter(|a| a["status"] == "ok").count() as i64;
    assert_eq!(
        count("SELECT count(DISTINCT article_id) FROM metric_snapshots"),
        live,
        "every live article has its counts"
    );
}

/// `mpwatch init --db URL` creates the schema in an existing PostgreSQL database and
/// writes the URL into the config (never a password: then it says how to give it).
#[test]
fn init_sets_up_a_postgres_database_and_keeps_a_password_out_of_the_config() {
    let Some(database) = TestDatabase::create("init_sets_up_a_postgres_database") else {
        return;
    };
    let url = database.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let init = mpwatch(&["--db", url, "init", "--dir", "setup"], dir.path());
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let config = dir.path().join("setup/mpwatch.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains(&format!("database = {}", toml::Value::String(url.to_string()))), "{text}");
    let config_arg = config.to_str().expect("path");
    let status = mpwatch(&["--config", config_arg, "db", "stats", "--json"], dir.path());
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(stats["schema_version"], mpwatch_store::LATEST_SCHEMA_VERSION);

    // With a password in the URL, the config keeps its database line commented out.
    let with_password = format!("{url}&password=hunter2");
    let init = mpwatch(&["--db", &with_password, "init", "--dir", "other"], dir.path());
    let said = String::from_utf8_lossy(&init.stdout);
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    assert!(said.contains("MPWATCH_DB") && !said.contains("hunter2"), "{said}");
    let text = std::fs::read_to_string(dir.path().join("other/mpwatch.toml")).expect("config");
    assert!(!text.contains("hunter2") && text.contains("# database = \"mpwatch.db\""));
}
