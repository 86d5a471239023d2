//! Three `mpwatch run` nodes (separate processes, each with its own name, limits and
//! credential set) crawling the simulator into one PostgreSQL database (issue 15): the
//! result equals the simulator's truth, no article or rung is stored twice, every node
//! did work, and a node SIGKILLed mid-run has its leases taken over within the lease
//! time. Against the throwaway cluster named by `MPWATCH_TEST_POSTGRES_URL` (`.ci/run`
//! starts one; the test skips without it).

mod common;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mpwatch_pg::test_database::TestDatabase;
use mpwatch_store::Store;

/// The lease the nodes run with: a dead node's work is free again after it.
const LEASE_SECONDS: u64 = 5;

/// A child process killed when dropped (a failed assertion leaves no node running).
struct Node {
    name: String,
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

fn post_json(url: &str, body: serde_json::Value) -> serde_json::Value {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    mpwatch_crawl::fetch::install_tls_provider();
    runtime.block_on(async {
        let response = reqwest::Client::new().post(url).json(&body).send().await.expect("post");
        response.json().await.expect("json")
    })
}

fn get_json(url: &str) -> serde_json::Value {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    mpwatch_crawl::fetch::install_tls_provider();
    runtime.block_on(async { reqwest::get(url).await.expect("get").json().await.expect("json") })
}

/// Writes node `n`'s config and secrets: its name, its own credential set issued by
/// the simulator, its own (different) page limit, a short lease, and schedules with a
/// seconds field.
fn node_config(dir: &Path, base_config: &str, sim: &str, n: usize) -> (PathBuf, u64) {
    let name = format!("node-{n}");
    let credential = post_json(&format!("{sim}/__sim/credentials"), serde_json::json!({ "name": name }));
    let secrets = dir.join(format!("secrets-{n}.toml"));
    let quote = |key: &str| serde_json::to_string(credential[key].as_str().expect(key)).expect("quote");
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&secrets).expect("secrets");
    writeln!(
        file,
        "[[client]]\nname = {}\nuin = {}\nkey = {}\npass_ticket = {}\nappmsg_token = {}\ncookie = {}",
        quote("name"),
        quote("uin"),
        quote("key"),
        quote("pass_ticket"),
        quote("appmsg_token"),
        quote("cookie")
    )
    .expect("secrets");
    // Each node its own page rate (WeChat limits per address), slow enough that the
    // work spreads over the nodes and a kill finds one mid-run.
    let interval = 20 + 5 * n;
    let config = base_config
        .replacen(
            "[rate_limits.article_page]\ninterval = \"2ms\"\nburst = 20",
            &format!("[rate_limits.article_page]\ninterval = \"{interval}ms\"\nburst = 1"),
            1,
        )
        .replacen("secrets_file = \"secrets.toml\"", &format!("secrets_file = \"secrets-{n}.toml\""), 1)
        .replacen("[crawl]\n", &format!("[crawl]\nlease = \"{LEASE_SECONDS}s\"\n"), 1);
    assert!(config.contains(&format!("interval = \"{interval}ms\"")) && config.contains("secrets-"));
    let config = format!(
        r#"{config}
[node]
name = "{name}"

[service]
stop_timeout = "3s"

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
cron = "*/4 * * * * *"
job = "index"
"#
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).expect("config");
    (path, credential["id"].as_u64().expect("credential id"))
}

fn start_node(dir: &Path, config: &Path, url: &str, n: usize) -> Node {
    let log = std::fs::File::create(dir.join(format!("node-{n}.log"))).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_mpwatch"))
        .arg("--config")
        .arg(config)
        .args(["--db", url, "run"])
        .env_remove("NOTIFY_SOCKET")
        .env_remove("MPWATCH_DB")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start node");
    Node { name: format!("node-{n}"), child }
}

#[test]
fn three_nodes_crawl_one_database_and_take_over_a_killed_ones_work() {
    let Some(database) = TestDatabase::create("three_nodes_crawl_one_database_and_take_over_a_killed_ones_work") else {
        return;
    };
    let url = database.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = common::SimProcess::start(dir.path(), 8, 10);
    // The simulator's accounts and sources into PostgreSQL.
    let copied = Command::new(env!("CARGO_BIN_EXE_mpwatch"))
        .args(["db", "copy", "--from", "mpwatch.db", "--to", url])
        .current_dir(dir.path())
        .output()
        .expect("db copy");
    assert!(copied.status.success(), "{}", String::from_utf8_lossy(&copied.stderr));
    let base_config = std::fs::read_to_string(dir.path().join("mpwatch.toml")).expect("config");
    let store = || Store::open_read_only(Path::new(url), Duration::from_secs(5)).expect("open");
    let count = |sql: &str| -> i64 { store().connection().query_row(sql, [], |row| row.get(0)).expect(sql) };

    let mut credentials = Vec::new();
    let mut nodes: Vec<Node> = (0..3)
        .map(|n| {
            let (config, credential) = node_config(dir.path(), &base_config, &sim.base, n);
            credentials.push(credential);
            start_node(dir.path(), &config, url, n)
        })
        .collect();
    let holder_of =
        |name: &str| -> Option<String> { store().crawler_lock(name).expect("lock").map(|lock| lock.holder) };
    let start = wait_for("three nodes to hold their locks", Duration::from_secs(30), || {
        (0..3).all(|n| holder_of(&format!("node-{n}")).is_some())
    });
    eprintln!("three nodes started in {start:?}");
    let status = Command::new(env!("CARGO_BIN_EXE_mpwatch"))
        .args(["--db", url, "status", "--json"])
        .env_remove("MPWATCH_CONFIG")
        .output()
        .expect("status");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    let listed: Vec<&str> =
        status["nodes"].as_array().expect("nodes").iter().filter_map(|node| node["node"].as_str()).collect();
    assert_eq!(listed, ["node-0", "node-1", "node-2"], "status lists the nodes");
    assert!(
        status["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .all(|node| node["egress"] == "direct" && node["alive"] == true)
    );

    let holders: Vec<String> = (0..3).map(|n| holder_of(&format!("node-{n}")).expect("holder")).collect();
    // node-2 is killed while it holds work.
    let victim = holders[2].clone();
    let held_by_victim = |store: &Store| -> Vec<i64> {
        let mut statement = store
            .connection()
            .prepare("SELECT id FROM work_queue WHERE state = 'leased' AND leased_by = ?1")
            .expect("prepare");
        statement.query_map([&victim], |row| row.get(0)).expect("query").collect::<Result<_, _>>().expect("rows")
    };
    // What a node fetched, from its runs' fetch log (written every 5 s and at the end).
    let fetched_by = |holder: &str| -> i64 {
        store()
            .connection()
            .query_row(
                "SELECT count(*) FROM fetch_log f JOIN crawl_runs r ON r.id = f.crawl_run_id
                 WHERE r.holder = ?1 AND f.outcome = 'ok'",
                [holder],
                |row| row.get(0),
            )
            .expect("fetched")
    };
    let busy = wait_for("node-2 to hold work after fetching some", Duration::from_secs(60), || {
        fetched_by(&victim) > 0 && !held_by_victim(&store()).is_empty()
    });
    eprintln!("node-2 held work after fetching some {busy:?} later");
    nodes[2].child.kill().expect("kill node-2");
    nodes[2].child.wait().expect("wait");
    let orphaned = held_by_victim(&store());
    assert!(!orphaned.is_empty());
    let taken_over = wait_for("the killed node's work to be taken over", Duration::from_secs(60), || {
        held_by_victim(&store()).is_empty()
    });
    eprintln!("{} items of the killed node taken over {taken_over:?} after the kill", orphaned.len());
    // Within the lease, plus a few seconds for a busy machine (the whole suite runs at
    // once) to notice: the others wake when a lease runs out.
    assert!(
        taken_over <= Duration::from_secs(LEASE_SECONDS + 5),
        "{} items of the killed node were taken over after {taken_over:?}, beyond the lease time ({LEASE_SECONDS} s)",
        orphaned.len()
    );

    // The two left finish the world.
    let truth = common::truth(&sim.base);
    let articles = truth["articles"].as_array().expect("articles");
    let live = articles.iter().filter(|a| a["status"] == "ok").count() as i64;
    let finished = wait_for("the nodes left to store the world", Duration::from_secs(120), || {
        count("SELECT count(*) FROM articles WHERE status != 'pending'") == articles.len() as i64
            && count("SELECT count(DISTINCT article_id) FROM metric_snapshots") == live
    });
    eprintln!("the two nodes left finished the world {finished:?} after the takeover");
    let status = Command::new(env!("CARGO_BIN_EXE_mpwatch"))
        .args(["--db", url, "status"])
        .env_remove("MPWATCH_CONFIG")
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("node-2") && text.contains("dead"), "the killed node shows dead:\n{text}");
    assert!(text.contains("database: postgres") && !text.contains("WAL"), "PostgreSQL has no WAL file:\n{text}");
    let stopping = Instant::now();
    for node in &mut nodes[..2] {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(i32::try_from(node.child.id()).expect("pid"), libc::SIGTERM) };
        let stopped = node.child.wait().expect("wait");
        assert!(stopped.success(), "{} stopped with {stopped}", node.name);
    }
    eprintln!("the two nodes stopped in {:?}", stopping.elapsed());

    // The truth, each article once, no rung twice.
    let stored: BTreeSet<(String, i64, i64)> = {
        let store = store();
        let mut statement = store.connection().prepare("SELECT biz, mid, idx FROM articles").expect("prepare");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let expected: BTreeSet<(String, i64, i64)> = articles
        .iter()
        .map(|a| {
            let key = &a["key"];
            (
                key["biz"].as_str().expect("biz").to_string(),
                key["mid"].as_i64().expect("mid"),
                key["idx"].as_i64().expect("idx"),
            )
        })
        .collect();
    assert_eq!(stored, expected, "the world's articles");
    assert_eq!(count("SELECT count(*) FROM articles"), articles.len() as i64, "each once");
    assert_eq!(
        count(
            "SELECT count(*) FROM (SELECT article_id, rung_seconds FROM metric_snapshots GROUP BY 1, 2 HAVING count(*) > 1) AS twice"
        ),
        0,
        "no rung twice"
    );
    assert_eq!(count("SELECT count(*) FROM work_queue WHERE state = 'leased'"), 0, "no lease left");
    assert_eq!(count("SELECT count(*) FROM crawler_lock WHERE node != 'node-2'"), 0, "the nodes left released theirs");

    // Every node did work (node-2 before it was killed).
    for (n, holder) in holders.iter().enumerate() {
        assert!(fetched_by(holder) > 0, "node-{n} ({holder}) fetched nothing");
    }
    // With the credential sets of their own secrets files only.
    let requests = get_json(&format!("{}/__sim/requests", sim.base));
    let used: BTreeSet<u64> =
        requests["requests"].as_array().expect("requests").iter().filter_map(|r| r["credential"].as_u64()).collect();
    let issued: BTreeSet<u64> = credentials.iter().copied().collect();
    assert!(!used.is_empty() && used.is_subset(&issued), "credential sets used {used:?}, the nodes' {issued:?}");
    // The database's own jobs ran once per fire, on whichever node claimed it: the
    // others said so.
    let logs: String =
        (0..3).map(|n| std::fs::read_to_string(dir.path().join(format!("node-{n}.log"))).unwrap_or_default()).collect();
    assert!(logs.contains("another node runs this fire"), "no node left an index fire to another");
}
