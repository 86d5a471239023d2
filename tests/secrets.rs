//! Secrets never leak: a crawl at trace level, against a simulator answering with
//! faults and then expiring the credential (an alert to a webhook), with known
//! credential values; none of them appears in any log line, output, database row,
//! archived page or webhook body.

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// A webhook receiver on loopback: keeps every request it gets (head and body).
fn webhook_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            log.lock().unwrap().push(format!("{head}\n{}", String::from_utf8_lossy(&body)));
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}");
        }
    });
    (url, received)
}

/// Every text value of every table, and every archived page decompressed.
fn database_text(db: &Path) -> String {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut text = String::new();
    for table in tables {
        let mut statement = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = statement.column_count();
        let mut rows = statement.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for column in 0..columns {
                match row.get_ref(column).unwrap() {
                    rusqlite::types::ValueRef::Text(bytes) => text.push_str(&String::from_utf8_lossy(bytes)),
                    rusqlite::types::ValueRef::Blob(bytes) => match zstd::decode_all(bytes) {
                        Ok(page) => text.push_str(&String::from_utf8_lossy(&page)),
                        Err(_) => text.push_str(&String::from_utf8_lossy(bytes)),
                    },
                    _ => {}
                }
                text.push('\n');
            }
        }
    }
    text
}

#[test]
fn no_credential_value_reaches_a_log_line_output_row_page_or_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let sim = common::SimProcess::start(dir.path(), 2, 4);
    let config = dir.path().join("mpwatch.toml");
    let secrets_path = dir.path().join("secrets.toml");
    let secrets: toml::Table = std::fs::read_to_string(&secrets_path).unwrap().parse().unwrap();
    let client = &secrets["client"].as_array().unwrap()[0];
    let values: Vec<String> = ["uin", "key", "pass_ticket", "appmsg_token", "cookie"]
        .iter()
        .map(|name| client[*name].as_str().unwrap().to_string())
        .collect();
    assert!(values.iter().all(|v| v.len() >= 8), "{values:?}");
    let (hook, received) = webhook_receiver();
    let mut text = std::fs::read_to_string(&secrets_path).unwrap();
    text.push_str(&format!("\n[[webhook]]\nname = \"test\"\nurl = \"{hook}\"\nformat = \"json\"\n"));
    std::fs::write(&secrets_path, text).unwrap();

    // Faults on every endpoint, then the credential revoked: retries, throttling,
    // expiry alerts, all at trace level.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    mpwatch_crawl::fetch::install_tls_provider();
    let base = sim.base.clone();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let scenario = serde_json::json!({
            "faults": [
                {"endpoint": "any", "fault": {"kind": "status", "status": 502}, "probability": 0.2},
                {"endpoint": "any", "fault": {"kind": "reset"}, "probability": 0.1},
            ]
        });
        let answer = client.put(format!("{base}/__sim/scenario")).json(&scenario).send().await.unwrap();
        assert!(answer.status().is_success(), "{}", answer.text().await.unwrap());
    });
    let mut outputs = Vec::new();
    let crawl = || {
        Command::new(env!("CARGO_BIN_EXE_mpwatch"))
            .arg("-vvv")
            .arg("--config")
            .arg(&config)
            .arg("crawl")
            .output()
            .unwrap()
    };
    outputs.push(crawl());
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let credentials: serde_json::Value =
            client.get(format!("{base}/__sim/credentials")).send().await.unwrap().json().await.unwrap();
        for credential in credentials.as_array().unwrap() {
            client.delete(format!("{base}/__sim/credentials/{}", credential["id"])).send().await.unwrap();
        }
    });
    outputs.push(crawl());
    for command in [&["status"][..], &["articles", "--json"], &["db", "stats"], &["config", "check"]] {
        outputs.push(
            Command::new(env!("CARGO_BIN_EXE_mpwatch"))
                .arg("-vvv")
                .arg("--config")
                .arg(&config)
                .args(command)
                .output()
                .unwrap(),
        );
    }

    let mut seen = String::new();
    for output in &outputs {
        seen.push_str(&String::from_utf8_lossy(&output.stdout));
        seen.push_str(&String::from_utf8_lossy(&output.stderr));
    }
    assert!(seen.lines().count() > 100, "trace logging said little:\n{seen}");
    let stored = database_text(&dir.path().join("mpwatch.db"));
    assert!(stored.contains("expired"), "the credential expiry was never recorded (the test would prove little)");
    let webhooks = received.lock().unwrap().join("\n");
    assert!(!webhooks.is_empty(), "no alert reached the webhook");
    for value in &values {
        assert!(!seen.contains(value.as_str()), "a credential value in the output or logs");
        assert!(!stored.contains(value.as_str()), "a credential value in the database");
        assert!(!webhooks.contains(value.as_str()), "a credential value in a webhook");
    }
}
