//! `mpwatch run` as systemd runs it: the notification socket, the watchdog, schedules
//! with a seconds field against the simulator, SIGTERM during a crawl, and a restart
//! that finishes the work with nothing lost, nothing duplicated, no run left running.

mod common;

use common::count;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the service sent to the notification socket, with arrival times.
#[derive(Clone, Default)]
struct Notifications(Arc<Mutex<Vec<(Instant, String)>>>);

impl Notifications {
    fn listen(path: &Path) -> Notifications {
        let socket = UnixDatagram::bind(path).unwrap();
        let log = Notifications::default();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..n]).to_string();
                for line in text.lines() {
                    sink.0.lock().unwrap().push((Instant::now(), line.to_string()));
                }
            }
        });
        log
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|(_, line)| line.clone()).collect()
    }

    fn count(&self, line: &str) -> usize {
        self.lines().iter().filter(|l| *l == line).count()
    }

    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The service process, killed if a failing test leaves it running.
struct ServiceProcess(Child);

impl std::ops::Deref for ServiceProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for ServiceProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn start_service(config: &Path, socket: &Path, stderr: &Path) -> ServiceProcess {
    ServiceProcess(
        Command::new(env!("CARGO_BIN_EXE_mpwatch"))
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("NOTIFY_SOCKET", socket)
            .env("WATCHDOG_USEC", "1000000")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap(),
    )
}

fn terminate(child: &mut Child) -> (std::process::ExitStatus, Duration) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let sent = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, sent.elapsed());
        }
        assert!(sent.elapsed() < Duration::from_secs(15), "the service did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn setup(dir: &Path) -> (common::SimProcess, PathBuf, PathBuf) {
    let sim = common::SimProcess::start(dir, 4, 8);
    let config = dir.join("mpwatch.toml");
    let db = dir.join("mpwatch.db");
    // Pages slow enough that a crawl is in flight when SIGTERM comes; schedules with a
    // seconds field so that the test does not wait for minutes.
    let text = std::fs::read_to_string(&config).unwrap();
    let slow = text.replacen(
        "[rate_limits.article_page]\ninterval = \"2ms\"\nburst = 20",
        "[rate_limits.article_page]\ninterval = \"30ms\"\nburst = 1",
        1,
    );
    assert_ne!(slow, text);
    let schedules = r#"
[service]
stop_timeout = "3s"
metrics_listen = "127.0.0.1:0"

[[schedule]]
name = "discover"
cron = "*/2 * * * * *"
job = "discover"

[[schedule]]
name = "metrics"
cron = "*/3 * * * * *"
job = "metrics"

[[schedule]]
name = "index"
cron = "*/5 * * * * *"
job = "index"
"#;
    std::fs::write(&config, format!("{slow}\n{schedules}")).unwrap();
    (sim, config, db)
}

#[test]
fn the_service_notifies_systemd_stops_on_sigterm_and_finishes_the_work_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, config, db) = setup(dir.path());
    let socket_path = dir.path().join("notify.sock");
    let notifications = Notifications::listen(&socket_path);
    let log = dir.path().join("service.log");

    let mut service = start_service(&config, &socket_path, &log);
    wait_for("READY=1", Duration::from_secs(30), || notifications.count("READY=1") == 1);
    assert!(count(&db, "SELECT count(*) FROM crawler_lock WHERE role = 'service'") == 1);
    // A scheduled discover run is under way and has stored pages.
    wait_for("a discover run storing pages", Duration::from_secs(60), || {
        count(&db, "SELECT count(*) FROM articles WHERE status != 'pending'") >= 5
            && count(&db, "SELECT count(*) FROM crawl_runs WHERE result = 'running' AND job = 'discover'") == 1
    });
    wait_for("two watchdog pings", Duration::from_secs(10), || notifications.count("WATCHDOG=1") >= 2);
    assert!(notifications.lines().iter().any(|l| l.starts_with("STATUS=")), "{:?}", notifications.lines());
    let stored_at_stop = count(&db, "SELECT count(*) FROM articles WHERE status != 'pending'");
    // Prometheus metrics, at the address the service logged.
    let logged = std::fs::read_to_string(&log).unwrap();
    let url = logged
        .split_whitespace()
        .find(|word| word.starts_with("http://") && word.ends_with("/metrics"))
        .unwrap_or_else(|| panic!("no metrics address in the log: {logged}"))
        .to_string();
    let metrics = {
        mpwatch_crawl::fetch::install_tls_provider();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async { reqwest::get(&url).await.unwrap().text().await.unwrap() })
    };
    for expected in [
        "mpwatch_requests_total{class=\"article_page\",outcome=\"article\"}",
        "mpwatch_queue_items{kind=\"page\",state=",
        "mpwatch_articles{status=\"ok\"}",
        "mpwatch_credential_sets{state=\"valid\"} 1",
        "mpwatch_cooldowns_active{scope=\"host\"} 0",
        "mpwatch_snapshots_total",
        "# EOF",
    ] {
        assert!(metrics.contains(expected), "{expected} missing from:\n{metrics}");
    }

    let (status, took) = terminate(&mut service);
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    assert_eq!(notifications.count("STOPPING=1"), 1, "{:?}", notifications.lines());
    assert_eq!(count(&db, "SELECT count(*) FROM crawl_runs WHERE result = 'running'"), 0, "{stderr}");
    assert!(count(&db, "SELECT count(*) FROM crawl_runs WHERE result = 'interrupted'") >= 1, "{stderr}");
    assert_eq!(count(&db, "SELECT count(*) FROM work_queue WHERE state = 'leased'"), 0, "leases given back");
    assert_eq!(count(&db, "SELECT count(*) FROM crawler_lock"), 0, "lock released");
    assert!(stderr.contains("job discover"), "one line per job run: {stderr}");

    // Restarted, it finishes the work.
    notifications.clear();
    let mut service = start_service(&config, &socket_path, &log);
    wait_for("READY=1 again", Duration::from_secs(30), || notifications.count("READY=1") == 1);
    let truth = common::truth(&sim.base);
    let articles = truth["articles"].as_array().unwrap();
    let live = articles.iter().filter(|a| a["status"] == "ok").count() as i64;
    wait_for("every article stored with its counts", Duration::from_secs(120), || {
        count(&db, "SELECT count(*) FROM articles WHERE status != 'pending'") == articles.len() as i64
            && count(&db, "SELECT count(DISTINCT article_id) FROM metric_snapshots") == live
    });
    assert!(stored_at_stop < articles.len() as i64, "the stop came too late to test anything");
    let (status, _) = terminate(&mut service);
    assert_eq!(status.code(), Some(0));

    assert_eq!(count(&db, "SELECT count(*) FROM articles"), articles.len() as i64, "every article, once");
    assert_eq!(count(&db, "SELECT count(*) FROM articles WHERE status = 'pending'"), 0, "nothing lost");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM (SELECT article_id, rung_seconds FROM metric_snapshots GROUP BY 1, 2 HAVING count(*) > 1)"
        ),
        0,
        "one snapshot per rung"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM crawl_runs WHERE result = 'running'"), 0);
    assert!(count(&db, "SELECT count(*) FROM service_jobs WHERE name = 'index' AND last_result = 'ok'") == 1);
    assert!(count(&db, "SELECT count(*) FROM crawl_runs WHERE trigger = 'schedule' AND job = 'metrics'") >= 1);
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: a signal to our own child process.
    unsafe {
        libc::kill(i32::try_from(child.id()).unwrap(), signal);
    }
}

#[test]
fn sighup_reloads_a_valid_config_and_keeps_the_old_one_when_the_new_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, config, db) = setup(dir.path());
    let socket_path = dir.path().join("notify.sock");
    let notifications = Notifications::listen(&socket_path);
    let log = dir.path().join("service.log");
    let mut service = start_service(&config, &socket_path, &log);
    wait_for("READY=1", Duration::from_secs(30), || notifications.count("READY=1") == 1);
    let valid = std::fs::read_to_string(&config).unwrap();

    // An invalid config: refused, logged, the old jobs go on.
    std::fs::write(
        &config,
        format!("{valid}\n[[schedule]]\nname = \"broken\"\ncron = \"61 * * * *\"\njob = \"index\"\n"),
    )
    .unwrap();
    signal(&service, libc::SIGHUP);
    wait_for("the refusal in the log", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).unwrap().contains("configuration not reloaded, keeping the old one")
    });
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("schedule[3].cron"), "the error names the key: {logged}");
    assert!(service.try_wait().unwrap().is_none(), "still running");

    // A valid one with a new job: reloaded.
    std::fs::write(
        &config,
        format!("{valid}\n[[schedule]]\nname = \"nightly\"\ncron = \"30 3 * * *\"\njob = \"maintenance\"\n"),
    )
    .unwrap();
    signal(&service, libc::SIGHUP);
    wait_for("the new job", Duration::from_secs(10), || {
        count(&db, "SELECT count(*) FROM service_jobs WHERE name = 'nightly' AND next_fire_at IS NOT NULL") == 1
    });
    assert!(notifications.count("RELOADING=1") >= 2, "{:?}", notifications.lines());
    assert!(notifications.count("READY=1") >= 3, "READY=1 after each reload: {:?}", notifications.lines());

    let (status, _) = terminate(&mut service);
    assert_eq!(status.code(), Some(0));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("configuration reloaded"), "{logged}");
    assert!(!logged.contains('\u{1b}'), "no colour codes when stderr is not a terminal");
}
