//! Helpers shared by the binary's integration tests (each test crate uses a part).
#![allow(dead_code)]

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A `mpwatch sim --write-config DIR` process, killed when dropped.
pub struct SimProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// What it printed up to "serving".
    pub lines: Vec<String>,
}

impl SimProcess {
    /// Starts the simulator on a free port and waits (on its output, not a timer) until
    /// it serves.
    pub fn start(dir: &Path, accounts: u32, days: u32) -> SimProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mpwatch"))
            .args(["sim", "--listen", "127.0.0.1:0", "--page-bytes", "20000"])
            .args(["--accounts", &accounts.to_string(), "--days", &days.to_string(), "--write-config"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let ready = line.starts_with("serving");
            lines.push(line);
            if ready {
                break;
            }
        }
        let base = lines
            .iter()
            .find_map(|l| l.strip_prefix("WeChat simulator at "))
            .expect("the simulator printed its URL")
            .to_string();
        SimProcess { child, base, lines }
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A number read from the database with a read-only connection that waits out the
/// writer's lock (0 when the query fails, e.g. before the first crawl made a table).
pub fn count(db: &Path, sql: &str) -> i64 {
    let Ok(conn) = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    conn.query_row(sql, [], |row| row.get(0)).unwrap_or(0)
}

/// The simulator's truth now (`GET /__sim/truth`): `{"articles": [...]}`.
pub fn truth(base: &str) -> serde_json::Value {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    mpwatch_crawl::fetch::install_tls_provider();
    runtime.block_on(async { reqwest::get(format!("{base}/__sim/truth")).await.unwrap().json().await.unwrap() })
}

/// Runs `mpwatch --db DB ARGS…` (no config of the environment's) and returns its
/// standard output; fails the test with its standard error when it fails.
pub fn mpwatch_on(db: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new(env!("CARGO_BIN_EXE_mpwatch"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("MPWATCH_CONFIG")
        .output()
        .unwrap();
    assert!(output.status.success(), "mpwatch {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}
