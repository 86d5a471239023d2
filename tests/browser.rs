//! The dashboard in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `.ci/run`) loads the rankings, an account and an article page of a demo database
//! served by `mpwatch serve`; the numbers on the rendered pages are checked against
//! `mpwatch report` and the database, and screenshots (desktop and phone) are saved
//! under `target/browser/` to look at.
//!
//! Where no Chromium can be found (`MPWATCH_CHROMIUM`, or `chromium` / `chromium-browser`
//! / `google-chrome` on PATH) the test says so and passes without checking.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use scraper::{Html, Selector};

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MPWATCH_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn mpwatch(db: &Path, args: &[&str]) -> String {
    String::from_utf8(common::mpwatch_on(db, args)).unwrap()
}

/// `mpwatch serve` on an ephemeral loopback port, stopped when dropped.
struct Serving {
    child: Child,
    base: String,
}

impl Serving {
    fn start(db: &Path) -> Serving {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mpwatch"))
            .arg("--db")
            .arg(db)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("MPWATCH_CONFIG")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // "serving http://127.0.0.1:PORT/ (…)": the server is bound once it says so.
        let mut line = String::new();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        stderr.read_line(&mut line).unwrap();
        // Keep reading what it logs, so that its writes never meet a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let base = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim_end_matches('/')
            .to_string();
        Serving { child, base }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page's DOM after Chromium loaded it, and screenshots of it at a desktop and a
/// phone width.
fn load(browser: &Path, url: &str, shots: &Path, name: &str) -> Html {
    let profile = tempfile::tempdir().unwrap();
    let run = |extra: &[String]| {
        let output = Command::new(browser)
            // cargo points LD_LIBRARY_PATH at target/ for the test; Chromium must load its
            // own libraries.
            .env_remove("LD_LIBRARY_PATH")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
            // Nothing but the server on loopback: no update checks, no sync, no
            // component downloads.
            .args([
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-default-browser-check",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(url)
            .output()
            .unwrap();
        assert!(output.status.success(), "chromium {url}: {}", String::from_utf8_lossy(&output.stderr));
        let log = format!("{}{}", String::from_utf8_lossy(&output.stderr), String::from_utf8_lossy(&output.stdout));
        (output.stdout, log)
    };
    for (suffix, size) in [("desktop", "1280,1800"), ("phone", "390,1600")] {
        let file = shots.join(format!("{name}-{suffix}.png"));
        let (_, log) = run(&[format!("--screenshot={}", file.display()), format!("--window-size={size}")]);
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}; chromium said: {log}", file.display()));
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{} is a real screenshot", file.display());
    }
    Html::parse_document(&String::from_utf8(run(&["--dump-dom".to_string()]).0).unwrap())
}

fn texts(html: &Html, selector: &str) -> Vec<String> {
    let selector = Selector::parse(selector).unwrap();
    html.select(&selector).map(|e| e.text().collect::<String>().trim().to_string()).collect()
}

#[test]
fn rankings_account_and_article_pages_show_the_numbers_of_report_in_chromium() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED: no Chromium found (set MPWATCH_CHROMIUM or install Debian's `chromium`; .ci/run installs it)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    mpwatch(&db, &["demo", "--days", "4", "--accounts", "4"]);
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("CARGO_TARGET_TMPDIR is target/tmp");
    let shots = target.join("browser");
    std::fs::create_dir_all(&shots).unwrap();

    // What report prints for the last final day, by NRI.
    let report: serde_json::Value =
        serde_json::from_str(&mpwatch(&db, &["report", "--index", "nri", "--format", "json"])).unwrap();
    let day = report["period"].as_str().unwrap().to_string();
    let rows = report["rows"].as_array().unwrap();
    assert!(rows.len() >= 4, "{report}");

    let server = Serving::start(&db);
    let rankings =
        load(&browser, &format!("{}/rankings?period=day&date={day}&index=nri", server.base), &shots, "rankings");
    let accounts = texts(&rankings, "table.ranking tbody td:nth-child(3)");
    let ranks = texts(&rankings, "table.ranking tbody td.rank");
    let values = texts(&rankings, "table.ranking tbody td.value");
    assert_eq!(accounts.len(), rows.len(), "one row per account");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(accounts[i], row["account"].as_str().unwrap());
        let rank = row["rank"].as_i64().map(|r| r.to_string()).unwrap_or_else(|| "–".into());
        assert_eq!(ranks[i], rank);
        assert_eq!(values[i], format!("{:.2}", row["value"].as_f64().unwrap()));
    }

    // The first-ranked account's page: its articles with their latest counts.
    let account_id = rows[0]["account_id"].as_i64().unwrap();
    let account = load(&browser, &format!("{}/account/{account_id}", server.base), &shots, "account");
    assert_eq!(texts(&account, "h1"), [rows[0]["account"].as_str().unwrap()]);
    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let (article_id, reads, snapshots): (i64, i64, i64) = conn
        .query_row(
            "SELECT a.id, (SELECT reads FROM metric_snapshots WHERE article_id = a.id ORDER BY observed_at DESC, id DESC LIMIT 1),
                    (SELECT count(*) FROM metric_snapshots WHERE article_id = a.id)
             FROM articles a WHERE a.account_id = ?1 AND a.title IS NOT NULL
               AND EXISTS (SELECT 1 FROM metric_snapshots WHERE article_id = a.id)
             ORDER BY a.published_at DESC, a.idx LIMIT 1",
            [account_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let row = Selector::parse(&format!("tr[data-article=\"{article_id}\"] td.num")).unwrap();
    let shown: Vec<String> = account.select(&row).map(|e| e.text().collect::<String>()).collect();
    let grouped = {
        let digits = reads.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if reads == 100_001 { "10万+".to_string() } else { out }
    };
    assert_eq!(shown.first(), Some(&grouped), "article {article_id}'s reads on the account page");
    assert_eq!(texts(&account, "figure.chart img").len(), 1);

    // The article page: one row per snapshot.
    let article = load(&browser, &format!("{}/article/{article_id}", server.base), &shots, "article");
    assert_eq!(texts(&article, "table.snapshots tbody tr").len() as i64, snapshots);
    assert!(!texts(&article, "article.body p").is_empty(), "the text is shown");
    eprintln!("screenshots in {}", shots.display());
}
