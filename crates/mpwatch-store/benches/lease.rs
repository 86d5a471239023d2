//! What one lease costs as the queue grows: `cargo bench -p mpwatch-store --bench lease`.
//!
//! A service's queue holds every future ladder rung of every article it tracks, and a
//! big crawl makes thousands of pages due at once. Each queue here holds N metrics items
//! due in the future (the ladder) and N/10 pages due now (a crawl's backlog); one lease
//! takes 16 in a write transaction and gives them back. Leasing by index ranges should
//! not grow with N; the single sorted query it replaced (an UPDATE over the first 16 of
//! every ready item, sorted) is timed beside it. With `MPWATCH_TEST_POSTGRES_URL` set,
//! the same leases on PostgreSQL (`FOR UPDATE SKIP LOCKED`, a round trip to the server
//! per statement) are timed too, and one lease of one item with its acknowledgement.
//! Results are in docs/benchmarks.md.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mpwatch_store::test_database::TestDatabase;
use mpwatch_store::{Store, StoreOptions};

const NOW: i64 = 1_800_000_000;

fn queue(future: usize) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(&dir.path().join("lease.db"), &StoreOptions::default()).expect("open");
    (dir, fill(store, future))
}

fn fill(mut store: Store, future: usize) -> Store {
    store
        .write(|tx| {
            let conn = tx.connection();
            let mut insert = conn
                .prepare(
                    "INSERT INTO work_queue (kind, target, priority, not_before, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, 0, 0)",
                )
                .expect("prepare");
            for n in 0..future {
                // Rungs from an hour to a month ahead.
                let at = NOW + 3600 + (n as i64 * 7919) % (30 * 86_400);
                insert.execute(rusqlite::params!["metrics", format!("{n}:rung"), 5, at]).expect("insert");
            }
            for n in 0..future / 10 {
                insert
                    .execute(rusqlite::params!["page", format!("page {n}"), 10, NOW - n as i64 % 3600])
                    .expect("insert");
            }
            for n in 0..50 {
                insert.execute(rusqlite::params!["metrics", format!("due {n}"), 5, NOW - n]).expect("insert");
            }
            Ok(())
        })
        .expect("fill the queue");
    store.connection().execute_batch("ANALYZE").expect("analyze");
    store
}

/// The same queue on PostgreSQL, when a test cluster is named.
fn postgres_queue(future: usize) -> Option<(TestDatabase, Store)> {
    let database = TestDatabase::create("the PostgreSQL lease benchmark")?;
    let store = Store::open(std::path::Path::new(database.url()), &StoreOptions::default()).expect("open");
    Some((database, fill(store, future)))
}

/// One lease of 16 items of any kind, given back at once, in one write transaction.
fn lease_16_and_release(store: &mut Store) -> usize {
    store
        .write(|tx| {
            let items = tx.lease_work(&["page", "metrics", "discover"], 16, NOW + 600, NOW)?;
            let ids: Vec<i64> = items.iter().map(|item| item.id).collect();
            tx.release_work(&ids, NOW)?;
            Ok(items.len())
        })
        .expect("lease")
}

/// The statement leasing used before: the first 16 of every ready item, sorted.
const SORTED_QUERY: &str = "UPDATE work_queue SET state = 'leased', lease_until = ?1 + 600, attempts = attempts + 1
    WHERE id IN (
        SELECT id FROM work_queue
        WHERE ((state = 'pending' AND not_before <= ?1) OR (state = 'leased' AND lease_until <= ?1))
          AND kind IN (SELECT value FROM json_each(?2))
        ORDER BY priority DESC, not_before, id LIMIT 16)
    RETURNING id";

fn lease(c: &mut Criterion) {
    let mut group = c.benchmark_group("lease_16");
    group.sample_size(20);
    for future in [10_000usize, 100_000, 1_000_000] {
        let (_dir, mut store) = queue(future);
        group.bench_with_input(BenchmarkId::new("index_ranges", future), &future, |b, _| {
            b.iter(|| lease_16_and_release(&mut store))
        });
        group.bench_with_input(BenchmarkId::new("sorted_query", future), &future, |b, _| {
            b.iter(|| {
                store
                    .write(|tx| {
                        let mut statement = tx.connection().prepare_cached(SORTED_QUERY).expect("prepare");
                        let ids: Vec<i64> = statement
                            .query_map(rusqlite::params![NOW, r#"["page","metrics","discover"]"#], |row| row.get(0))
                            .expect("query")
                            .map(|id| id.expect("id"))
                            .collect();
                        tx.release_work(&ids, NOW)?;
                        Ok(ids.len())
                    })
                    .expect("lease")
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("lease_postgres");
    group.sample_size(20);
    for future in [10_000usize, 100_000] {
        let Some((_database, mut store)) = postgres_queue(future) else { break };
        group.bench_with_input(BenchmarkId::new("lease_16_skip_locked", future), &future, |b, _| {
            b.iter(|| lease_16_and_release(&mut store))
        });
        // What a worker pays per item: lease one, acknowledge it, in two transactions.
        group.bench_with_input(BenchmarkId::new("lease_1_and_ack", future), &future, |b, _| {
            b.iter(|| {
                let items = store.write(|tx| tx.lease_work(&["page"], 1, NOW + 600, NOW)).expect("lease");
                store
                    .write(|tx| {
                        for item in &items {
                            tx.retry_work(item.id, None, NOW, "bench", NOW)?;
                        }
                        Ok(())
                    })
                    .expect("ack")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, lease);
criterion_main!(benches);
