//! One process fetches per database: `mpwatch crawl` hands its crawl to a running
//! service and follows it, or waits for another foreground crawl; either way the
//! simulator sees the configured request rate, never twice it.

mod common;

use common::count;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mpwatch(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mpwatch"));
    command.arg("--config").arg(config).env_remove("RUST_LOG");
    command
}

/// Article-page arrival times (ms) from the simulator's request log.
fn page_arrivals(base: &str) -> Vec<u64> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    mpwatch_crawl::fetch::install_tls_provider();
    let log: serde_json::Value = runtime.block_on(async {
        reqwest::get(format!("{base}/__sim/requests?since=0")).await.unwrap().json().await.unwrap()
    });
    let mut times: Vec<u64> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.starts_with("/s")))
        .map(|r| r["at_ms"].as_u64().unwrap())
        .collect();
    times.sort_unstable();
    times
}

/// No window of `window_ms` holds more than `burst + window / interval`, +2 for the
/// jitter of arrivals (timed at the simulator) against admissions (timed in the
/// crawler): on a loaded 2-core CI a send delayed after its slot can land next to the
/// following one. Exact admission times are proved with a paused clock in
/// crates/mpwatch-crawl/tests/limits.rs; this checks that two crawlers never double the
/// rate (double would exceed the bound by far in the 10x and 50x windows).
fn assert_rate_held(arrivals: &[u64], interval_ms: u64, burst: usize) {
    for window_ms in [interval_ms, 10 * interval_ms, 50 * interval_ms] {
        let bound = burst + (window_ms / interval_ms) as usize + 2;
        for (i, start) in arrivals.iter().enumerate() {
            let inside = arrivals[i..].iter().take_while(|t| **t < start + window_ms).count();
            assert!(inside <= bound, "{inside} page requests within {window_ms} ms (bound {bound})");
        }
    }
}

fn setup(dir: &Path, schedules: &str) -> (common::SimProcess, PathBuf, PathBuf) {
    let sim = common::SimProcess::start(dir, 4, 6);
    let config = dir.join("mpwatch.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let slow = text.replacen(
        "[rate_limits.article_page]\ninterval = \"2ms\"\nburst = 20",
        "[rate_limits.article_page]\ninterval = \"25ms\"\nburst = 1",
        1,
    );
    assert_ne!(slow, text);
    std::fs::write(&config, format!("{slow}\n{schedules}")).unwrap();
    (sim, config, dir.join("mpwatch.db"))
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_crawl_is_handed_to_the_running_service_and_followed_to_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    // The service fetches only for the ladder on its own (metrics every 2 s); discovery
    // comes from the ad-hoc crawl.
    let (sim, config, db) = setup(
        dir.path(),
        "[[schedule]]\nname = \"metrics\"\ncron = \"*/2 * * * * *\"\njob = \"metrics\"\n\n[[schedule]]\nname = \"discover\"\ncron = \"0 0 1 1 *\"\njob = \"discover\"\ncatch_up = \"none\"\n",
    );
    let _service = Service(mpwatch(&config).arg("run").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    wait_for("the service's lock", Duration::from_secs(30), || {
        count(&db, "SELECT count(*) FROM crawler_lock WHERE role = 'service'") == 1
    });
    let status = mpwatch(&config).args(["status", "--json"]).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["service"]["running"], true);
    assert_eq!(status["jobs"].as_array().unwrap().len(), 2);

    // `--enqueue` returns at once with the id.
    let enqueued = mpwatch(&config).args(["crawl", "--enqueue", "--no-metrics"]).output().unwrap();
    assert!(enqueued.status.success(), "{}", String::from_utf8_lossy(&enqueued.stderr));
    assert!(String::from_utf8_lossy(&enqueued.stdout).contains("as request #1"));

    // A followed crawl: same summary and exit code as in the foreground.
    let followed = mpwatch(&config).arg("crawl").output().unwrap();
    let stdout = String::from_utf8_lossy(&followed.stdout);
    let stderr = String::from_utf8_lossy(&followed.stderr);
    assert!(followed.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("handed over as request #2"), "{stderr}");
    assert!(stdout.contains("crawl #") && stdout.contains("articles:"), "{stdout}");
    // The enqueued request ran beside the followed one and may end a moment later.
    wait_for("both requests done", Duration::from_secs(30), || {
        count(&db, "SELECT count(*) FROM crawl_requests WHERE state = 'done' AND run_id IS NOT NULL") == 2
    });
    assert_eq!(count(&db, "SELECT count(*) FROM crawl_runs WHERE trigger = 'adhoc'"), 2);
    let stored = count(&db, "SELECT count(*) FROM articles WHERE status != 'pending'");
    assert!(stored > 20, "the ad-hoc runs stored the articles ({stored})");
    // Only the service fetched: the configured rate held overall.
    assert_rate_held(&page_arrivals(&sim.base), 25, 1);
}

#[test]
fn a_second_foreground_crawl_waits_for_the_first_instead_of_doubling_the_rate() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, config, db) = setup(dir.path(), "");
    let first =
        mpwatch(&config).args(["crawl", "--no-metrics"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let mut first = Service(first);
    wait_for("the first crawl's lock and pages", Duration::from_secs(30), || {
        count(&db, "SELECT count(*) FROM crawler_lock WHERE role = 'crawl'") == 1
            && count(&db, "SELECT count(*) FROM articles WHERE status != 'pending'") > 0
    });
    let second = mpwatch(&config).args(["crawl", "--no-metrics"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(stderr.contains("is crawling this database; waiting for it to finish"), "{stderr}");
    // The first finished before the second began.
    let first_status = first.0.wait().unwrap();
    assert!(first_status.success());
    assert_eq!(count(&db, "SELECT count(*) FROM crawl_runs WHERE result = 'running'"), 0);
    assert_eq!(count(&db, "SELECT count(*) FROM crawler_lock"), 0, "both released the lock");
    assert_rate_held(&page_arrivals(&sim.base), 25, 1);
}
