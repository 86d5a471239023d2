//! Two crawler nodes on one PostgreSQL database (issue 15), each an engine with its own
//! `[node] name` and its own egress address (`[http] local_address` on loopback: the
//! simulator sees, and limits, each address apart): a credential set they share is
//! used by one node at a time, and a host's cooldown rests only the node that met the
//! verification page, whose work the other takes on. Against the throwaway cluster
//! named by `MPWATCH_TEST_POSTGRES_URL` (`.ci/run` starts one; the tests skip without
//! it). The clock is frozen: nothing here waits for a lease or a cooldown to run out.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use common::{Harness, count};
use mpwatch_core::SourceKind;
use mpwatch_core::secrets::ClientCredential;
use mpwatch_crawl::{CrawlOptions, Engine};
use mpwatch_sim::scenario::{Limit, Quota};
use mpwatch_store::nodes::NodeClaim;
use mpwatch_store::test_database::TestDatabase;
use mpwatch_store::{Store, StoreOptions};

const NODE_A: (&str, &str) = ("node-a", "127.0.0.2");
const NODE_B: (&str, &str) = ("node-b", "127.0.0.3");

fn open(url: &str) -> Store {
    Store::open(Path::new(url), &StoreOptions::default()).expect("open the test database")
}

/// Node `name`'s engine, leaving from `address`.
fn node(
    harness: &Harness,
    url: &str,
    (name, address): (&str, &str),
    credentials: Vec<ClientCredential>,
) -> Arc<Engine> {
    let mut config = harness.config.clone();
    config.node.name = Some(name.into());
    config.http.local_address = Some(address.parse().expect("address"));
    harness.engine_on(open(url), config, credentials)
}

/// The simulator's log of requests from `address` (after request `since`), as
/// (sequence number, path, credential id).
fn requests_from(harness: &Harness, address: &str, since: u64) -> Vec<(u64, String, Option<u64>)> {
    let address: IpAddr = address.parse().expect("address");
    harness
        .sim
        .state()
        .requests_since(since)
        .into_iter()
        .filter(|r| r.client.parse::<IpAddr>().ok() == Some(address))
        .map(|r| (r.seq, r.path, r.credential))
        .collect()
}

/// The sequence number the simulator's next request gets (the log is in order of
/// arrival at the lock, which concurrent requests may reach out of order).
fn next_request(harness: &Harness) -> u64 {
    harness.sim.state().requests_since(0).iter().map(|r| r.seq + 1).max().unwrap_or(0)
}

/// Live articles of the world without a count snapshot.
fn without_counts(store: &Store) -> i64 {
    count(
        store,
        "SELECT count(*) FROM articles a WHERE status = 'ok' AND NOT EXISTS (SELECT 1 FROM metric_snapshots s WHERE s.article_id = a.id)",
    )
}

/// The runtime the simulator and the engines run on. The tests themselves run outside
/// it: the PostgreSQL client blocks, and may not inside a runtime.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// A test's database, the runtime, and the simulator's world with its accounts (and
/// `profile_ext` sources) in the database; `None` (the test skips) without a cluster.
fn cluster(
    test: &str,
    seed: u64,
    accounts: usize,
    days: i64,
    tweak: impl FnOnce(&mut mpwatch_sim::SimConfig),
) -> Option<(TestDatabase, tokio::runtime::Runtime, Harness)> {
    let database = TestDatabase::create(test)?;
    let runtime = runtime();
    let harness = runtime.block_on(Harness::new(seed, accounts, days, tweak));
    harness.add_accounts_to(&mut open(database.url()), usize::MAX, &[SourceKind::ProfileExt]);
    Some((database, runtime, harness))
}

#[test]
fn two_nodes_sharing_a_credential_set_never_use_it_at_once() {
    let Some((database, runtime, harness)) =
        cluster("two_nodes_sharing_a_credential_set_never_use_it_at_once", 1501, 4, 4, |_| {})
    else {
        return;
    };
    let url = database.url();
    // One credential set in both nodes' secrets.
    let issued = harness.sim.state().issue_credential(Some("shared".into()));
    let (shared, shared_id) = (issued.to_client(), issued.id);
    let a = node(&harness, url, NODE_A, vec![shared.clone()]);
    let b = node(&harness, url, NODE_B, vec![shared]);
    let store = open(url);
    let now = harness.sim.state().now();
    let with_set =
        |address, since| requests_from(&harness, address, since).into_iter().filter(|r| r.2 == Some(shared_id)).count();

    // node-a lists the accounts (with the set, whose lease it takes) and fetches pages.
    let pages_only = CrawlOptions { metrics: false, ..CrawlOptions::default() };
    runtime.block_on(a.run(&pages_only)).expect("node-a");
    assert_eq!(store.credential_holder("shared", now).expect("holder").as_deref(), Some(NODE_A.0));
    assert!(with_set(NODE_A.1, 0) > 0, "node-a listed with the set");

    // node-b takes counts: it leases them, finds the set held by node-a, and gives each
    // back to the queue at once (not a minute later), without a request.
    let metrics_only = CrawlOptions { pages: false, ..CrawlOptions::default() };
    runtime.block_on(b.run(&metrics_only)).expect("node-b");
    assert_eq!(with_set(NODE_B.1, 0), 0, "node-b never used the set node-a holds");
    assert!(
        count(
            &store,
            "SELECT count(*) FROM work_queue WHERE kind = 'metrics' AND state = 'pending' AND last_error = 'pending credentials'"
        ) > 0,
        "node-b leased counts and gave them back"
    );
    assert_eq!(
        count(
            &store,
            &format!(
                "SELECT count(*) FROM work_queue WHERE kind = 'metrics' AND state = 'pending'
                 AND last_error = 'pending credentials' AND not_before > {now}"
            )
        ),
        0,
        "nothing waits for node-b"
    );

    // Both at once: node-a takes every count (the clock frozen), node-b none.
    let options = CrawlOptions::default();
    let (ran_a, ran_b) = runtime.block_on(async { tokio::join!(a.run(&options), b.run(&options)) });
    ran_a.expect("node-a");
    ran_b.expect("node-b");
    assert_eq!(without_counts(&store), 0, "every live article has its counts");
    assert_eq!(count(&store, "SELECT count(*) FROM articles WHERE status = 'pending'"), 0, "every page fetched");
    assert_eq!(with_set(NODE_B.1, 0), 0, "node-b never used the set node-a holds");

    // node-a's lease runs out (it is gone, say): node-b takes the set over for the
    // next rungs, and from then on only node-b uses it.
    let handover = next_request(&harness);
    harness.clock.advance(harness.config.crawl.lease.as_secs() as f64 + 3600.0);
    runtime.block_on(b.run(&options)).expect("node-b");
    assert!(with_set(NODE_B.1, handover) > 0, "node-b took the next rungs with the set");
    assert_eq!(with_set(NODE_A.1, handover), 0);
    let now = harness.sim.state().now();
    assert_eq!(store.credential_holder("shared", now).expect("holder").as_deref(), Some(NODE_B.0));
}

#[test]
fn a_verification_page_rests_the_host_for_its_node_only() {
    // Each address may make 40 requests an hour; past them it gets verification pages
    // for an hour.
    let Some((database, runtime, harness)) =
        cluster("a_verification_page_rests_the_host_for_its_node_only", 1502, 4, 4, |config| {
            config.scenario.quota =
                Quota { per_client: Some(Limit { limit: 40, window: 3600 }), per_credential: None, cooldown: 3600 };
        })
    else {
        return;
    };
    let url = database.url();
    let a = node(&harness, url, NODE_A, vec![harness.credential("phone-a")]);
    let b = node(&harness, url, NODE_B, vec![harness.credential("phone-b")]);
    let articles = harness.truth().len() as i64;
    let pages_only = CrawlOptions { metrics: false, ..CrawlOptions::default() };

    // node-a alone lists the accounts and fetches pages until its address is blocked.
    runtime.block_on(a.run(&pages_only)).expect("node-a");
    let store = open(url);
    let now = harness.sim.state().now();
    let rests: Vec<(String, String)> = store
        .active_cooldowns(now)
        .expect("cooldowns")
        .into_iter()
        .map(|cooldown| (cooldown.scope, cooldown.node))
        .collect();
    assert_eq!(rests, [("host".to_string(), NODE_A.0.to_string())], "the host rests for node-a alone");
    let left = count(&store, "SELECT count(*) FROM articles WHERE status = 'pending'");
    assert!(left > 0, "node-a's quota left pages to fetch");
    // What node-a held when it met the verification page went back to the queue, due
    // now, not at the end of its rest.
    assert_eq!(
        count(
            &store,
            &format!(
                "SELECT count(*) FROM work_queue WHERE kind = 'page' AND state = 'pending' AND not_before > {now}"
            )
        ),
        0,
        "no page waits for node-a's rest"
    );

    // Both run: node-a leases no page while it rests, node-b fetches them all.
    let since = next_request(&harness);
    let (ran_a, ran_b) = runtime.block_on(async { tokio::join!(a.run(&pages_only), b.run(&pages_only)) });
    ran_a.expect("node-a");
    ran_b.expect("node-b");
    let page_requests =
        |address| requests_from(&harness, address, since).iter().filter(|r| r.1.starts_with("/s")).count();
    assert_eq!(
        page_requests(NODE_A.1),
        0,
        "node-a fetched no page while its host rests: {:?}",
        requests_from(&harness, NODE_A.1, since)
    );
    assert!(page_requests(NODE_B.1) as i64 >= left, "node-b fetched what was left");
    assert_eq!(count(&store, "SELECT count(*) FROM articles WHERE status = 'pending'"), 0, "every page fetched");
    assert_eq!(count(&store, "SELECT count(*) FROM articles"), articles, "the world's articles");
    assert_eq!(count(&store, "SELECT count(*) FROM cooldowns WHERE node = 'node-b'"), 0, "node-b never rested");
}

#[test]
fn a_run_stays_for_the_pages_another_nodes_discovery_finds() {
    let Some((database, runtime, harness)) =
        cluster("a_run_stays_for_the_pages_another_nodes_discovery_finds", 1503, 3, 3, |_| {})
    else {
        return;
    };
    let url = database.url();
    let mut store = open(url);
    // node-x, alive (its heartbeat fresh on the frozen clock), is listing the first
    // account: it holds that source's discovery item.
    let now = harness.sim.state().now();
    let other = "4242@elsewhere";
    let (source, biz): (i64, String) = store
        .connection()
        .query_row(
            "SELECT s.id, a.biz FROM account_sources s JOIN accounts a ON a.id = s.account_id ORDER BY s.id LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("a source");
    let discovering = store
        .write(|tx| {
            let claim = NodeClaim { node: "node-x", holder: other, role: "service", egress: "direct" };
            tx.take_crawler_lock(&claim, |_| true, now)?;
            tx.enqueue("discover", &source.to_string(), 10, now, now)?;
            tx.lease_work_as(&["discover"], 1, now + 600, now, Some(other))
        })
        .expect("node-x's lease");
    assert_eq!(discovering.len(), 1);

    // node-a crawls everything else, then has nothing due, while node-x still lists.
    let a = node(&harness, url, NODE_A, vec![harness.credential("phone-a")]);
    let run = runtime.spawn({
        let a = a.clone();
        async move { a.run(&CrawlOptions::default()).await }
    });
    let idle = format!(
        "SELECT count(*) FROM work_queue WHERE (state = 'pending' AND not_before <= {now})
            OR (state = 'leased' AND leased_by != '{other}')"
    );
    let started = std::time::Instant::now();
    while count(&store, "SELECT count(*) FROM crawl_runs") == 0 || count(&store, &idle) > 0 {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "node-a never ran out of work");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let found: Vec<String> = harness.truth().into_iter().filter(|a| a.key.biz.as_str() == biz).map(|a| a.url).collect();
    assert!(!found.is_empty());
    assert!(!run.is_finished(), "node-a's run ended while another node was still listing");

    // node-x's listing ends: it queues the pages it found and lets go of its item.
    store
        .write(|tx| {
            for url in &found {
                tx.enqueue("page", url, 10, now, now)?;
            }
            tx.complete_work(discovering[0].id, Some(other), now).map(drop)
        })
        .expect("node-x's results");
    let summary = runtime.block_on(run).expect("join").expect("node-a's run");
    assert_eq!(summary.result, "ok");
    assert_eq!(
        count(&store, &format!("SELECT count(*) FROM articles WHERE biz = '{biz}' AND status != 'pending'")),
        found.len() as i64,
        "node-a fetched every page node-x found"
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM articles WHERE status = 'pending'"),
        0,
        "node-a's run took the pages node-x found"
    );
}
