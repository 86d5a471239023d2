//! Crash consistency: a crawl of a world of more than 5,000 articles is killed with
//! SIGKILL ten times at varied points and restarted each time; at the end the
//! database equals the simulator's truth, with no lease held, no run left `running`,
//! nothing twice, and `PRAGMA integrity_check` ok.

mod common;

use common::count;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn crawl(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mpwatch"));
    command.arg("--config").arg(config).args(["crawl", "--no-metrics"]);
    command
}

#[test]
fn ten_kills_at_varied_points_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sim = common::SimProcess::start(dir.path(), 60, 40);
    let config = dir.path().join("mpwatch.toml");
    // Commits every 20 ms rather than every second: a kill point is a count of stored
    // rows, and a second's group would carry the crawl past several of them at once.
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("[crawl]\n"), "the simulator wrote no [crawl] section");
    std::fs::write(&config, text.replacen("[crawl]\n", "[crawl]\ncommit_gather = \"20ms\"\n", 1)).unwrap();
    let db = dir.path().join("mpwatch.db");
    // Where each kill falls: this many new rows after the crawl started (varied, and
    // fixed so that a failure can be reproduced).
    let kill_after = [37, 211, 95, 388, 60, 150, 290, 25, 333, 120];
    let mut kills = 0;
    let mut stored_at_kills = Vec::new();
    while kills < 10 {
        let mut child = crawl(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        // Kill once the crawl has got somewhere: a number of new rows (pages
        // stored, or list pages' articles listed) after it started.
        let before = count(&db, "SELECT count(*) FROM articles") + count(&db, "SELECT count(*) FROM fetch_log");
        let target = before + kill_after[kills];
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut finished = false;
        while count(&db, "SELECT count(*) FROM articles") + count(&db, "SELECT count(*) FROM fetch_log") < target {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            assert!(Instant::now() < deadline, "the crawl made no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        if finished {
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        stored_at_kills.push(count(&db, "SELECT count(*) FROM articles WHERE status != 'pending'"));
    }
    assert_eq!(kills, 10, "the world was crawled before ten kills: {stored_at_kills:?}");
    let output = crawl(&config).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let truth = common::truth(&sim.base);
    let articles = truth["articles"].as_array().unwrap();
    assert!(articles.len() >= 5_000, "a world of {} articles", articles.len());
    assert_eq!(count(&db, "SELECT count(*) FROM articles"), articles.len() as i64, "every article, once");
    assert_eq!(count(&db, "SELECT count(*) FROM articles WHERE status = 'pending'"), 0, "every page fetched");
    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut statement = conn.prepare("SELECT url, status, title FROM articles").unwrap();
    let stored: std::collections::HashMap<String, (String, Option<String>)> = statement
        .query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for article in articles {
        let key = article["url"].as_str().unwrap();
        let (status, title) = stored.get(key).unwrap_or_else(|| panic!("missing {key}"));
        assert_eq!(status, article["status"].as_str().unwrap(), "{key}");
        if status == "ok" {
            assert_eq!(title.as_deref(), article["title"].as_str(), "{key}");
        }
    }
    assert_eq!(count(&db, "SELECT count(*) FROM work_queue WHERE state = 'leased'"), 0, "no lease left");
    assert_eq!(count(&db, "SELECT count(*) FROM crawl_runs WHERE result = 'running'"), 0, "no run left running");
    assert_eq!(count(&db, "SELECT count(*) FROM crawl_runs WHERE result = 'interrupted'"), 10);
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
    assert_eq!(integrity, "ok");
}
