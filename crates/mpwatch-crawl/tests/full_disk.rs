//! A full disk (SQLite's `max_page_count` reached) stops the crawl with one clear
//! error, leaves nothing half-written, and a later crawl completes once there is room.

mod common;

use std::sync::Arc;

use common::{Harness, count, differences_from_truth};
use mpwatch_core::SourceKind;
use mpwatch_core::secrets::Secrets;
use mpwatch_crawl::{CrawlOptions, Engine};
use mpwatch_store::{Store, StoreOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_crawl_cleanly_and_a_later_crawl_completes() {
    let harness = Harness::new(501, 1, 6, |_| {}).await;
    harness.add_accounts(usize::MAX, &[SourceKind::ProfileExt]);
    let store = Store::open(&harness.db_path(), &StoreOptions::default()).unwrap();
    // Room for a few dozen more pages of the database, not for the whole world.
    let pages: i64 = store.connection().query_row("PRAGMA page_count", [], |row| row.get(0)).unwrap();
    store.connection().sqlite().expect("SQLite").pragma_update(None, "max_page_count", pages + 40).unwrap();
    let secrets = Secrets { client: vec![harness.credential("phone-1")], ..Secrets::default() };
    let engine =
        Arc::new(Engine::new(store, harness.config.clone(), secrets, Arc::new(harness.clock.clone())).unwrap());
    let error = engine.run(&CrawlOptions::default()).await.expect_err("the disk filled up");
    let message = error.to_string();
    assert!(message.contains("full") && !message.contains('\n') && message.len() < 300, "{message}");
    drop(engine);

    // Nothing half-written: every stored page has its article row complete, and the file is sound.
    let store = harness.store();
    let integrity: String = store.connection().query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    let stored = count(&store, "SELECT count(*) FROM articles WHERE status = 'ok'");
    assert_eq!(count(&store, "SELECT count(*) FROM articles WHERE status = 'ok' AND content_text IS NULL"), 0);
    assert!(stored < harness.truth().len() as i64, "the limit never bit: {stored} stored");

    // With room again, a later crawl (its leases taken back) completes the world.
    harness.clock.advance(harness.config.crawl.lease.as_secs_f64() + 1.0);
    harness.engine(vec![harness.credential("phone-2")]).run(&CrawlOptions::default()).await.unwrap();
    let differences = differences_from_truth(&harness);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
