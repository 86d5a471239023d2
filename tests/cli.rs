//! The `mpwatch` binary as a new user meets it: init, accounts, OPML, db, config errors.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

/// A fresh directory with `mpwatch init` run in it.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let setup = Setup { dir };
        setup.cmd().args(["init", "--dir"]).arg(setup.path()).assert().success();
        setup
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> PathBuf {
        self.path().join("mpwatch.toml")
    }

    /// mpwatch with the environment cleared of MPWATCH_* and run in the directory.
    fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("mpwatch").unwrap();
        cmd.current_dir(self.path()).env_remove("MPWATCH_CONFIG").env_remove("MPWATCH_DB").env_remove("RUST_LOG");
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        let output = self.cmd().args(args).output().unwrap();
        assert!(output.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    fn accounts_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.run(&["account", "list", "--json"])).unwrap()
    }
}

const LONG_URL: &str =
    "https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&amp;mid=2653567890&amp;idx=1&amp;sn=ab12&amp;chksm=99#rd";

#[test]
fn init_writes_config_private_secrets_and_database() {
    let setup = Setup::new();
    assert!(setup.config().is_file());
    assert!(setup.path().join("mpwatch.db").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(setup.path().join("secrets.toml")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Found in the current directory without --config.
    let out = setup.run(&["config", "check"]);
    assert!(out.contains("config: ./mpwatch.toml (valid)"), "{out}");
    assert!(out.contains("client credential sets: 0"), "{out}");
    // A second init keeps what is there.
    let again = setup.run(&["init"]);
    assert!(again.contains("kept existing"), "{again}");
}

#[test]
fn the_documented_schema_is_created() {
    let setup = Setup::new();
    let conn = rusqlite::Connection::open(setup.path().join("mpwatch.db")).unwrap();
    let mut names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // SQLite's own tables, and FTS5's shadow tables of articles_fts (documented with it).
    let fts5_shadow = ["articles_fts_data", "articles_fts_idx", "articles_fts_docsize", "articles_fts_config"];
    names.retain(|n| !n.starts_with("sqlite_") && !fts5_shadow.contains(&n.as_str()));
    let schema_doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema.md")).unwrap();
    for name in &names {
        assert!(schema_doc.contains(&format!("### `{name}`")), "docs/schema.md does not document {name}");
    }
    for expected in [
        "accounts",
        "articles",
        "metric_snapshots",
        "work_queue",
        "fetch_log",
        "crawl_runs",
        "v_articles",
        "v_latest_metrics",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
}

#[test]
fn account_add_accepts_every_form_and_list_json_shows_them() {
    let setup = Setup::new();
    let out = setup.run(&["account", "add", LONG_URL, "--name", "环球科学", "--group", "publishers"]);
    assert!(out.contains("added account #1 (环球科学), biz MzA5MjkzMTA1Mw=="), "{out}");
    setup.run(&["account", "add", "https://mp.weixin.qq.com/s/KDWh_qGpFN5Vu1TR9t30Mw"]);
    setup.run(&["account", "add", "keyanquan", "--name", "科研圈", "--group", "publishers"]);
    setup.run(&["account", "add", "--feed", "https://rss.example.org/feeds/MP_WXS_3.atom", "--name", "中科院之声"]);
    setup.run(&["account", "add", "MzI0Nzg2MTExMA=="]);
    // Adding again merges.
    let again = setup.run(&["account", "add", LONG_URL]);
    assert!(again.contains("already tracked"), "{again}");

    let accounts = setup.accounts_json();
    let accounts = accounts.as_array().unwrap();
    assert_eq!(accounts.len(), 5);
    assert_eq!(accounts[0]["biz"], "MzA5MjkzMTA1Mw==");
    assert_eq!(accounts[0]["groups"], serde_json::json!(["publishers"]));
    assert_eq!(
        accounts[0]["sources"][1]["locator"],
        "https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&mid=2653567890&idx=1&sn=ab12"
    );
    assert_eq!(accounts[1]["sources"][0]["kind"], "manual");
    assert_eq!(accounts[2]["alias"], "keyanquan");
    assert_eq!(accounts[3]["sources"][0]["kind"], "feed");

    let publishers = setup.run(&["account", "list", "--group", "publishers", "--json"]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&publishers).unwrap().as_array().unwrap().len(), 2);
}

#[test]
fn a_url_that_is_neither_article_nor_feed_is_refused_in_one_line() {
    let setup = Setup::new();
    setup
        .cmd()
        .args(["account", "add", "https://example.com/blog/post"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::starts_with("error: ")
                .and(predicate::str::contains("neither a WeChat article URL nor a feed")),
        )
        .stderr(predicate::function(|s: &str| s.trim_end().lines().count() == 1));
    setup
        .cmd()
        .args(["account", "add", "环球科学"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a WeChat account"));
}

#[test]
fn opml_export_then_import_changes_nothing() {
    let setup = Setup::new();
    setup.run(&["account", "add", LONG_URL, "--name", "环球科学", "--group", "publishers", "--group", "science"]);
    setup.run(&[
        "account",
        "add",
        "--feed",
        "https://rss.example.org/feeds/MP_WXS_2.atom",
        "--name",
        "科研圈",
        "--group",
        "publishers",
    ]);
    setup.run(&["account", "add", "--feed", "https://rss.example.org/feeds/MP_WXS_3.atom", "--name", "中科院之声"]);
    let before = setup.accounts_json();
    let exported = setup.run(&["account", "export-opml"]);
    assert!(exported.contains("xmlUrl=\"https://rss.example.org/feeds/MP_WXS_2.atom\""), "{exported}");

    let out = setup.cmd().args(["account", "import-opml", "-"]).write_stdin(exported.clone()).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 new"));
    assert_eq!(setup.accounts_json(), before, "import of an exported file changed the accounts");

    // Into an empty database the same file recreates the same accounts.
    let other = Setup::new();
    other.cmd().args(["account", "import-opml", "-"]).write_stdin(exported).assert().success();
    let strip = |value: serde_json::Value| -> Vec<String> {
        let mut rows: Vec<String> = value
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{} {} {}", a["nickname"], a["biz"], a["groups"]))
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(strip(other.accounts_json()), strip(before));
}

#[test]
fn remove_disables_and_purge_deletes() {
    let setup = Setup::new();
    setup.run(&["account", "add", "huanqiukexue", "--name", "环球科学"]);
    let out = setup.run(&["account", "remove", "huanqiukexue"]);
    assert!(out.contains("disabled account #1"), "{out}");
    assert_eq!(setup.accounts_json()[0]["enabled"], false);
    let out = setup.run(&["account", "remove", "#1", "--purge"]);
    assert!(out.contains("deleted account #1 (环球科学): 0 articles, 0 snapshots, 1 sources"), "{out}");
    assert_eq!(setup.accounts_json(), serde_json::json!([]));
    setup
        .cmd()
        .args(["account", "remove", "nobody"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no account matches"));
}

#[test]
fn db_commands_report_path_version_and_counts() {
    let setup = Setup::new();
    setup.run(&["account", "add", "huanqiukexue"]);
    assert_eq!(setup.run(&["db", "path"]).trim(), "./mpwatch.db");
    let stats: serde_json::Value = serde_json::from_str(&setup.run(&["db", "stats", "--json"])).unwrap();
    assert_eq!(stats["schema_version"], mpwatch_store::LATEST_SCHEMA_VERSION);
    assert!(stats["file_bytes"].as_u64().unwrap() > 0);
    assert!(stats["tables"].as_array().unwrap().iter().any(|t| t[0] == "accounts" && t[1] == 1));
    let other_db = setup.path().join("elsewhere/other.db");
    setup.cmd().args(["db", "migrate", "--db"]).arg(&other_db).assert().success();
    assert!(other_db.is_file());
    setup.cmd().args(["db", "path"]).env("MPWATCH_DB", &other_db).assert().stdout(predicate::str::contains("other.db"));
}

#[test]
fn config_errors_name_the_file_and_key() {
    let setup = Setup::new();
    std::fs::write(setup.config(), "[rate_limits.article_page]\ninterval = \"0s\"\n").unwrap();
    setup
        .cmd()
        .args(["db", "path"])
        .assert()
        .code(1)
        .stderr("error: ./mpwatch.toml: rate_limits.article_page.interval must be > 0\n");
    std::fs::write(setup.config(), "[crawl]\nsnapshot_agez = []\n").unwrap();
    setup.cmd().args(["--config", "mpwatch.toml", "db", "path"]).assert().code(1).stderr(
        predicate::str::contains("mpwatch.toml: crawl").and(predicate::str::contains("unknown field `snapshot_agez`")),
    );
    setup
        .cmd()
        .args(["--config", "missing.toml", "db", "path"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot read config file missing.toml"))
        // The cause once, not repeated by the error chain.
        .stderr(predicate::function(|text: &str| text.matches("No such file").count() == 1));
    setup
        .cmd()
        .args(["--config", "/dev/urandom", "db", "path"])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(1)
        .stderr("error: cannot read config file /dev/urandom: larger than 1024 KiB, so not a file of this kind\n");
}

#[cfg(unix)]
#[test]
fn an_open_secrets_file_is_refused_and_secret_values_never_printed() {
    use std::os::unix::fs::PermissionsExt as _;
    let setup = Setup::new();
    let secrets = setup.path().join("secrets.toml");
    std::fs::write(
        &secrets,
        "[[client]]\nname = \"phone-1\"\nuin = \"UIN_SECRET\"\nkey = \"KEY_SECRET\"\npass_ticket = \"PT_SECRET\"\nappmsg_token = \"TOKEN_SECRET\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    setup
        .cmd()
        .args(["config", "check"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("mode 0644").and(predicate::str::contains("chmod 600")));
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let output = setup.cmd().args(["-vvv", "config", "check"]).output().unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{all}");
    assert!(all.contains("client credential sets: 1 (phone-1)"), "{all}");
    for secret in ["UIN_SECRET", "KEY_SECRET", "PT_SECRET", "TOKEN_SECRET"] {
        assert!(!all.contains(secret), "{secret} printed");
    }
}

#[test]
fn usage_errors_exit_2() {
    let setup = Setup::new();
    setup.cmd().args(["account", "frobnicate"]).assert().code(2);
    setup.cmd().args(["account", "add"]).assert().code(2);
    // Bad values are usage errors too, named in the message.
    for (args, named) in [
        (&["articles", "--status", "bogus"][..], "bogus"),
        (&["articles", "--since", "2026-02-30"], "2026-02-30"),
        (&["report", "--date", "2026-13-01"], "2026-13-01"),
        (&["report", "--index", "wci-v99"], "wci-v99"),
        (&["index", "--from", "yesterday", "--to", "2026-01-01"], "yesterday"),
    ] {
        setup.cmd().args(args).assert().code(2).stderr(predicate::str::contains(named));
    }
}

/// Every command `mpwatch --help` lists is documented in the README (lychee keeps its
/// README and `--help` in step the same way).
#[test]
fn the_readme_documents_every_command() {
    let help = Command::cargo_bin("mpwatch").unwrap().arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("    "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 12, "{commands:?}");
    for command in commands {
        assert!(readme.contains(&format!("`mpwatch {command}")), "README does not document `mpwatch {command}`");
    }
}

#[test]
fn config_check_prints_each_jobs_next_three_fires() {
    let setup = Setup::new();
    // `init` writes the four default jobs.
    let out = setup.run(&["config", "check"]);
    for job in ["discover", "metrics", "index", "maintenance"] {
        let line =
            out.lines().find(|l| l.trim_start().starts_with(&format!("{job} ("))).unwrap_or_else(|| panic!("{out}"));
        let next = line.split("; next ").nth(1).unwrap();
        assert_eq!(next.split(", ").count(), 3, "{line}");
    }
    // A seconds field and another time zone.
    std::fs::write(
        setup.config(),
        "[[schedule]]\nname = \"fast\"\ncron = \"*/10 * * * * *\"\njob = \"metrics\"\ntimezone = \"Europe/Berlin\"\n",
    )
    .unwrap();
    let out = setup.run(&["config", "check"]);
    let line = out.lines().find(|l| l.contains("fast (metrics)")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("\"*/10 * * * * *\" Europe/Berlin; next "), "{line}");
    let seconds: Vec<&str> = line.split("; next ").nth(1).unwrap().split(", ").map(|t| &t[17..19]).collect();
    assert!(seconds.iter().all(|s| s.ends_with('0')), "{line}");
    std::fs::write(setup.config(), "[[schedule]]\nname = \"x\"\ncron = \"* * *\"\njob = \"index\"\n").unwrap();
    setup
        .cmd()
        .args(["config", "check"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("mpwatch.toml: schedule[0].cron \"* * *\" must have 5 fields"));
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn read_commands_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["db", "stats"][..],
        &["account", "list"],
        &["articles"],
        &["status"],
        &["report"],
        &["--db", "sub/dir/m.db", "db", "stats"],
    ] {
        let output = Command::cargo_bin("mpwatch")
            .unwrap()
            .current_dir(dir.path())
            .env_remove("MPWATCH_CONFIG")
            .env_remove("MPWATCH_DB")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.starts_with("error: no database at "), "{args:?}: {stderr}");
        assert!(stderr.contains("mpwatch init"), "{stderr}");
        assert_eq!(files_in(dir.path()), Vec::<String>::new(), "{args:?} created something");
    }
}

#[test]
fn another_programs_sqlite_file_is_left_byte_identical_unless_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('mine');",
        )
        .unwrap();
    }
    let before = std::fs::read(&foreign).unwrap();
    for args in [&["db", "stats"][..], &["account", "list"], &["status"], &["db", "migrate"], &["report"], &["crawl"]] {
        let output = Command::cargo_bin("mpwatch")
            .unwrap()
            .current_dir(dir.path())
            .env_remove("MPWATCH_CONFIG")
            .args(["--db", "other.db"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.contains("other.db is not an mpwatch database (it has 1 tables of another program)"),
            "{stderr}"
        );
        assert_eq!(std::fs::read(&foreign).unwrap(), before, "{args:?} changed the file");
        assert_eq!(files_in(dir.path()), vec!["other.db".to_string()], "{args:?}");
    }
    // Asked for, mpwatch moves in beside the other tables.
    Command::cargo_bin("mpwatch")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("MPWATCH_CONFIG")
        .args(["--db", "other.db", "db", "migrate", "--adopt"])
        .assert()
        .success();
    let conn = rusqlite::Connection::open(&foreign).unwrap();
    let notes: String = conn.query_row("SELECT body FROM notes", [], |r| r.get(0)).unwrap();
    assert_eq!(notes, "mine");
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, mpwatch_store::LATEST_SCHEMA_VERSION);
}

#[test]
fn reading_an_mpwatch_database_leaves_it_unchanged() {
    let setup = Setup::new();
    let db = setup.path().join("mpwatch.db");
    // Let the database settle (checkpointed, no WAL).
    setup.run(&["db", "migrate"]);
    let before = std::fs::read(&db).unwrap();
    for args in [&["db", "stats"][..], &["account", "list"], &["articles"], &["status"], &["status", "--json"]] {
        setup.run(args);
        assert_eq!(std::fs::read(&db).unwrap(), before, "{args:?} changed the database");
    }
}
