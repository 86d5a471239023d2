//! `mpwatch sim --write-config`: a ready-to-use setup pointing at the simulator.

use std::io::BufRead as _;
use std::process::{Command, Stdio};

#[test]
fn sim_writes_a_config_that_mpwatch_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpwatch"))
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--accounts",
            "3",
            "--days",
            "5",
            "--page-bytes",
            "20000",
            "--write-config",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    // Wait for the server to say it is ready (no fixed sleep).
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let ready = line.starts_with("serving");
        lines.push(line);
        if ready {
            break;
        }
    }
    let base = lines.iter().find_map(|l| l.strip_prefix("WeChat simulator at ")).unwrap().to_string();
    assert!(lines.iter().any(|l| l.trim_start().starts_with("key = ")), "{lines:?}");

    let config = dir.path().join("mpwatch.toml");
    let check = Command::new(env!("CARGO_BIN_EXE_mpwatch"))
        .arg("--config")
        .arg(&config)
        .args(["config", "check"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{out}{}", String::from_utf8_lossy(&check.stderr));
    assert!(out.contains(&format!("wechat base URL: {base}")), "{out}");
    assert!(out.contains("client credential sets: 1 (sim-1)"), "{out}");
    let list = Command::new(env!("CARGO_BIN_EXE_mpwatch"))
        .arg("--config")
        .arg(&config)
        .args(["account", "list", "--json"])
        .output()
        .unwrap();
    let accounts: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(accounts.as_array().unwrap().len(), 7);
    assert_eq!(accounts[0]["alias"], "huanqiukexue");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(dir.path().join("secrets.toml")).unwrap().permissions().mode() & 0o777, 0o600);
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
