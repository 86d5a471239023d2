//! `mpwatch crawl` as a process: killed mid-run and started again, it finishes the work
//! with no lost and no duplicated rows.

mod common;

use common::count;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_killed_crawl_finishes_on_restart_without_lost_or_duplicated_rows() {
    let dir = tempfile::tempdir().unwrap();
    let sim = common::SimProcess::start(dir.path(), 4, 8);
    let base = sim.base.clone();
    let config = dir.path().join("mpwatch.toml");
    let db = dir.path().join("mpwatch.db");
    // Slow the pages down so that the crawl is still running when it is killed.
    let text = std::fs::read_to_string(&config).unwrap();
    let slow = text.replacen(
        "[rate_limits.article_page]\ninterval = \"2ms\"\nburst = 20",
        "[rate_limits.article_page]\ninterval = \"40ms\"\nburst = 1",
        1,
    );
    assert_ne!(slow, text);
    std::fs::write(&config, slow).unwrap();

    let mut crawl = Command::new(env!("CARGO_BIN_EXE_mpwatch"))
        .arg("--config")
        .arg(&config)
        .arg("crawl")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (on a condition, not a fixed time) until some pages are stored, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&db, "SELECT count(*) FROM articles WHERE status != 'pending'") < 10 {
        assert!(Instant::now() < deadline, "the crawl stored nothing");
        assert!(crawl.try_wait().unwrap().is_none(), "the crawl ended before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    crawl.kill().unwrap();
    crawl.wait().unwrap();
    let stored_at_kill = count(&db, "SELECT count(*) FROM articles WHERE status != 'pending'");

    let output =
        Command::new(env!("CARGO_BIN_EXE_mpwatch")).arg("--config").arg(&config).arg("crawl").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // The truth at the end, from the simulator's admin API.
    let truth = common::truth(&base);
    let articles = truth["articles"].as_array().unwrap();
    let stored = count(&db, "SELECT count(*) FROM articles");
    assert!(stored_at_kill < stored, "the kill came too late to test anything ({stored_at_kill} of {stored})");
    assert_eq!(stored, articles.len() as i64, "every article of the world, once");
    assert_eq!(count(&db, "SELECT count(*) FROM articles WHERE status = 'pending'"), 0, "nothing lost");
    assert_eq!(count(&db, "SELECT count(*) FROM work_queue WHERE state = 'leased'"), 0, "dead leases were taken back");
    // The killed run was closed by the next process, with the counts it had written.
    assert_eq!(count(&db, "SELECT count(*) FROM crawl_runs WHERE result = 'running'"), 0);
    assert_eq!(count(&db, "SELECT count(*) FROM crawl_runs WHERE result = 'interrupted'"), 1);
    // One snapshot per article and rung, never two.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM (SELECT article_id, rung_seconds FROM metric_snapshots GROUP BY 1, 2 HAVING count(*) > 1)"
        ),
        0
    );
    let live = articles.iter().filter(|a| a["status"] == "ok").count() as i64;
    assert_eq!(
        count(&db, "SELECT count(DISTINCT article_id) FROM metric_snapshots"),
        live,
        "every live article has its counts"
    );
}

#[test]
fn ctrl_c_and_sigterm_stop_a_foreground_crawl_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let _sim = common::SimProcess::start(dir.path(), 4, 8);
    let config = dir.path().join("mpwatch.toml");
    let db = dir.path().join("mpwatch.db");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replacen(
            "[rate_limits.article_page]\ninterval = \"2ms\"\nburst = 20",
            "[rate_limits.article_page]\ninterval = \"40ms\"\nburst = 1",
            1,
        ),
    )
    .unwrap();
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let mut crawl = Command::new(env!("CARGO_BIN_EXE_mpwatch"))
            .arg("--config")
            .arg(&config)
            .args(["crawl", "--backfill"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let before = count(&db, "SELECT count(*) FROM articles WHERE status != 'pending'");
        let deadline = Instant::now() + Duration::from_secs(60);
        while count(&db, "SELECT count(*) FROM articles WHERE status != 'pending'") < before + 5 {
            if Instant::now() > deadline {
                let _ = crawl.kill();
                panic!("the crawl stored nothing");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: a signal to our own child.
        unsafe {
            libc::kill(i32::try_from(crawl.id()).unwrap(), signal);
        }
        let sent = Instant::now();
        let output = crawl.wait_with_output().unwrap();
        let took = sent.elapsed();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{stdout}\n{stderr}");
        assert!(took < Duration::from_secs(5), "stopped in {took:?}");
        assert!(stderr.contains("stopping…"), "{stderr}");
        assert!(stdout.contains("interrupted in"), "the summary is printed: {stdout}");
        assert_eq!(count(&db, "SELECT count(*) FROM work_queue WHERE state = 'leased'"), 0, "leases released");
        assert_eq!(count(&db, "SELECT count(*) FROM crawler_lock"), 0, "lock released");
        assert_eq!(count(&db, "SELECT count(*) FROM crawl_runs WHERE result = 'running'"), 0);
        let counted =
            count(&db, "SELECT articles_new FROM crawl_runs WHERE result = 'interrupted' ORDER BY id DESC LIMIT 1");
        assert!(counted >= 5, "the interrupted run has its counts ({counted})");
        // What it fetched entered the full-text index; listed articles wait for their page.
        let fetched_waiting = "SELECT count(*) FROM articles_fts_pending p JOIN articles a ON a.id = p.article_id
            WHERE a.status != 'pending'";
        assert_eq!(count(&db, fetched_waiting), 0);
    }
}
