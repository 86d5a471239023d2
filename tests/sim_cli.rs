//! `mpwatch sim --write-config`: a ready-to-use setup pointing at the simulator.

mod common;

use std::process::Command;

#[test]
fn sim_writes_a_config_that_mpwatch_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let sim = common::SimProcess::start(dir.path(), 3, 5);
    let (base, lines) = (&sim.base, &sim.lines);
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
}
