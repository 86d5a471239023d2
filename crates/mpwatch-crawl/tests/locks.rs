//! Another program holding the database's write lock (a user's sqlite3 shell in a
//! transaction) is waited out, losing nothing; past the busy timeout the affected work
//! is deferred, never failed; a long reader never stalls the crawler.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Harness, count, differences_from_truth};
use mpwatch_core::SourceKind;
use mpwatch_core::secrets::Secrets;
use mpwatch_crawl::{CrawlOptions, Engine};
use mpwatch_store::{Store, StoreOptions};

/// Once the crawl has stored its first article, takes the write lock from another
/// connection and holds it for `hold` (or a read transaction, with `write: false`).
fn hold_lock_during_crawl(path: std::path::PathBuf, hold: Duration, write: bool) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let other = Store::open(&path, &StoreOptions::default()).expect("open from another connection");
        let connection = other.connection();
        while connection.query_row("SELECT count(*) FROM articles", [], |row| row.get::<_, i64>(0)).unwrap() == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        connection.execute_batch(if write { "BEGIN IMMEDIATE" } else { "BEGIN" }).unwrap();
        if !write {
            // A read transaction holds its snapshot from its first read on.
            connection.query_row("SELECT count(*) FROM articles", [], |row| row.get::<_, i64>(0)).unwrap();
        }
        std::thread::sleep(hold);
        connection.execute_batch("COMMIT").unwrap();
    })
}

fn engine(harness: &Harness, busy_timeout: Duration) -> Arc<Engine> {
    let store = Store::open(&harness.db_path(), &StoreOptions { busy_timeout, ..StoreOptions::default() }).unwrap();
    let secrets = Secrets { client: vec![harness.credential("phone-1")], ..Secrets::default() };
    Arc::new(Engine::new(store, harness.config.clone(), secrets, Arc::new(harness.clock.clone())).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_write_lock_within_the_busy_timeout_is_waited_out_losing_nothing() {
    let harness = Harness::new(401, 1, 6, |_| {}).await;
    harness.add_accounts(usize::MAX, &[SourceKind::ProfileExt]);
    let holder = hold_lock_during_crawl(harness.db_path(), Duration::from_secs(3), true);
    let started = Instant::now();
    let summary = engine(&harness, Duration::from_secs(60)).run(&CrawlOptions::default()).await.unwrap();
    holder.join().unwrap();
    assert!(started.elapsed() >= Duration::from_secs(3), "the lock was never in the way");
    assert_eq!(summary.result, "ok", "{summary:?}");
    let differences = differences_from_truth(&harness);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // Every request the simulator answered has its fetch-log row.
    let store = harness.store();
    assert_eq!(count(&store, "SELECT count(*) FROM fetch_log") as usize, harness.sim.state().requests_since(0).len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_past_the_busy_timeout_fails_nothing_and_a_later_crawl_completes() {
    let harness = Harness::new(402, 1, 6, |_| {}).await;
    harness.add_accounts(usize::MAX, &[SourceKind::ProfileExt]);
    let holder = hold_lock_during_crawl(harness.db_path(), Duration::from_secs(3), true);
    let summary = engine(&harness, Duration::from_millis(500)).run(&CrawlOptions::default()).await;
    holder.join().unwrap();
    let summary = summary.expect("a lock past the busy timeout does not end the crawl with an error");
    let store = harness.store();
    assert_eq!(count(&store, "SELECT count(*) FROM work_queue WHERE state = 'failed'"), 0, "{summary:?}");
    // The lock was in the way (how many items it deferred depends on what was in
    // flight when it was taken; the leased ones left are those).
    assert!(summary.duration_ms >= 3_000, "the lock was never in the way: {summary:?}");
    // Deferred items are taken again once their lease runs out.
    harness.clock.advance(harness.config.crawl.lease.as_secs_f64() + 1.0);
    engine(&harness, Duration::from_secs(60)).run(&CrawlOptions::default()).await.unwrap();
    let differences = differences_from_truth(&harness);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_reader_never_stalls_the_crawler() {
    let harness = Harness::new(403, 1, 6, |_| {}).await;
    harness.add_accounts(usize::MAX, &[SourceKind::ProfileExt]);
    // A reader holding one snapshot for longer than the whole crawl takes; with a busy
    // timeout of 100 ms, any write it blocked would show as deferred work.
    let holder = hold_lock_during_crawl(harness.db_path(), Duration::from_secs(4), false);
    let summary = engine(&harness, Duration::from_millis(100)).run(&CrawlOptions::default()).await.unwrap();
    assert_eq!(summary.result, "ok", "{summary:?}");
    let differences = differences_from_truth(&harness);
    holder.join().unwrap();
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
