//! The store's guarantees, on real files: migrations, idempotent writes, concurrent
//! readers, append-only history and the crash-safe queue.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mpwatch_core::{ArticleKey, ArticleKind, ArticleStatus, Biz, Copyright, SourceKind};
use mpwatch_store::accounts::{NewAccount, NewSource};
use mpwatch_store::articles::{ArticleRecord, Snapshot, UpsertOutcome};
use mpwatch_store::test_database::TestDatabase;
use mpwatch_store::{LATEST_SCHEMA_VERSION, Store, StoreError, StoreOptions};

const NOW: i64 = 1_764_000_000;

fn open(path: &Path) -> Store {
    Store::open(path, &StoreOptions::default()).expect("open store")
}

/// A new database of one backend: a SQLite file, or a PostgreSQL database of its own.
struct Database {
    location: PathBuf,
    _dir: Option<tempfile::TempDir>,
    _postgres: Option<TestDatabase>,
}

impl Database {
    fn open(&self) -> Store {
        open(&self.location)
    }

    fn location(&self) -> &Path {
        &self.location
    }
}

/// Runs `test` on a new SQLite file, then (when `MPWATCH_TEST_POSTGRES_URL` names a
/// cluster; it says it skipped otherwise) on a new PostgreSQL database: the store's
/// behaviour is the same on both backends.
fn each_backend(name: &str, test: impl Fn(&Database)) {
    let dir = tempfile::tempdir().unwrap();
    test(&Database { location: dir.path().join("m.db"), _dir: Some(dir), _postgres: None });
    if let Some(postgres) = TestDatabase::create(&format!("{name} on PostgreSQL")) {
        test(&Database { location: PathBuf::from(postgres.url()), _dir: None, _postgres: Some(postgres) });
    }
}

fn biz() -> Biz {
    Biz::parse("MzA5MjkzMTA1Mw==").unwrap()
}

fn page_record(mid: u64, idx: u32) -> ArticleRecord {
    let key = ArticleKey { biz: biz(), mid, idx };
    ArticleRecord {
        url: format!("https://mp.weixin.qq.com/s?__biz={}&mid={mid}&idx={idx}&sn=abc", key.biz),
        key: Some(key),
        sn: Some("abc".into()),
        title: Some("黑洞的第一张照片".into()),
        author: Some("环球科学".into()),
        published_at: Some(NOW - 3600),
        kind: Some(ArticleKind::Article),
        copyright: Some(Copyright::Original),
        content_text: Some("正文内容".into()),
        word_count: Some(4),
        image_count: Some(2),
        status: ArticleStatus::Ok,
        ..ArticleRecord::default()
    }
}

fn snapshot(observed_at: i64, rung: Option<i64>, reads: i64) -> Snapshot {
    Snapshot {
        observed_at,
        rung_seconds: rung,
        reads: Some(reads),
        reads_capped: reads >= 100_001,
        likes: Some(3),
        wows: Some(2),
        shares: None,
        comments: Some(1),
        source: "test".into(),
    }
}

fn count(store: &Store, table: &str) -> i64 {
    store.connection().query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap()
}

#[test]
fn migrates_an_empty_file_and_sets_connection_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/m.db");
    let store = open(&path);
    assert_eq!(store.schema_version().unwrap(), LATEST_SCHEMA_VERSION);
    let conn = store.connection();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let foreign_keys: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
    assert_eq!(foreign_keys, 1);
    let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
    assert_eq!(synchronous, 1, "NORMAL");
    let busy: i64 = conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0)).unwrap();
    assert_eq!(busy, 60_000);
    for name in ["accounts", "articles", "metric_snapshots", "work_queue", "v_articles", "v_latest_metrics"] {
        let found: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_schema WHERE name = ?1", [name], |r| r.get(0)).unwrap();
        assert_eq!(found, 1, "{name} missing");
    }
    assert_eq!(count(&store, "schema_migrations"), LATEST_SCHEMA_VERSION);
}

#[test]
fn reopening_is_idempotent() {
    each_backend("reopening_is_idempotent", |db| {
        let migrations = count(&db.open(), "schema_migrations");
        {
            let mut store = db.open();
            store.write(|tx| tx.add_account(&NewAccount::with_biz(biz()), NOW)).unwrap();
        }
        let store = db.open();
        let store_again = db.open();
        assert_eq!(store.schema_version().unwrap(), LATEST_SCHEMA_VERSION);
        assert_eq!(count(&store_again, "schema_migrations"), migrations);
        assert_eq!(store.list_accounts(None).unwrap().len(), 1);
        // A read-only open reads the same, and refuses to write.
        let reader = Store::open_read_only(db.location(), std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(reader.list_accounts(None).unwrap().len(), 1);
        assert!(reader.connection().execute("DELETE FROM accounts", []).is_err());
    });
}

#[test]
fn refuses_a_database_from_a_newer_mpwatch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    drop(open(&path));
    let future = LATEST_SCHEMA_VERSION + 7;
    rusqlite::Connection::open(&path).unwrap().pragma_update(None, "user_version", future).unwrap();
    let error = Store::open(&path, &StoreOptions::default()).unwrap_err();
    assert!(matches!(error, StoreError::NewerSchema { found, .. } if found == future));
    let message = error.to_string();
    assert!(message.contains(&format!("schema version {future}")), "{message}");
    assert!(message.contains(&format!("up to {LATEST_SCHEMA_VERSION}")), "{message}");
}

#[test]
fn account_add_is_idempotent_and_merges_identifiers() {
    each_backend("account_add_is_idempotent_and_merges_identifiers", |db| {
        let mut store = db.open();
        let new = NewAccount {
            biz: Some(biz()),
            nickname: Some("环球科学".into()),
            groups: vec!["publishers".into(), " science ".into()],
            sources: vec![NewSource { kind: SourceKind::ProfileExt, locator: biz().to_string() }],
            ..NewAccount::default()
        };
        let first = store.write(|tx| tx.add_account(&new, NOW)).unwrap();
        let second = store.write(|tx| tx.add_account(&new, NOW + 5)).unwrap();
        assert!(first.created);
        assert!(!second.created);
        assert_eq!(first.id, second.id);
        let merged = NewAccount { alias: Some("huanqiukexue".into()), ..NewAccount::with_biz(biz()) };
        store.write(|tx| tx.add_account(&merged, NOW + 9)).unwrap();

        let accounts = store.list_accounts(None).unwrap();
        assert_eq!(accounts.len(), 1);
        let account = &accounts[0];
        assert_eq!(account.alias.as_deref(), Some("huanqiukexue"));
        assert_eq!(account.nickname.as_deref(), Some("环球科学"));
        assert_eq!(account.groups, vec!["publishers", "science"]);
        assert_eq!(account.sources.len(), 1);
        assert_eq!(store.resolve_account("huanqiukexue").unwrap().id, account.id);
        assert_eq!(store.resolve_account("MzA5MjkzMTA1Mw").unwrap().id, account.id);
        assert_eq!(store.list_accounts(Some("science")).unwrap().len(), 1);
        assert!(store.list_accounts(Some("nope")).unwrap().is_empty());
        assert!(matches!(store.resolve_account("nobody"), Err(StoreError::NotFound(_))));
    });
}

#[test]
fn article_upserts_are_idempotent() {
    each_backend("article_upserts_are_idempotent", |db| {
        let mut store = db.open();
        store.write(|tx| tx.add_account(&NewAccount::with_biz(biz()), NOW)).unwrap();
        let record = page_record(2650000001, 1);
        let (id, first) = store.write(|tx| tx.upsert_article(&record, NOW)).unwrap();
        let before = store.article_by_key(record.key.as_ref().unwrap()).unwrap().unwrap();
        let (same_id, second) = store.write(|tx| tx.upsert_article(&record, NOW + 60)).unwrap();
        let after = store.article_by_key(record.key.as_ref().unwrap()).unwrap().unwrap();
        assert_eq!(first, UpsertOutcome::Inserted);
        assert_eq!(second, UpsertOutcome::Unchanged);
        assert_eq!(id, same_id);
        assert_eq!(count(&store, "articles"), 1);
        assert_eq!(after.last_fetched_at, Some(NOW + 60));
        assert_eq!(crate_independent(&before), crate_independent(&after));
        assert_eq!(after.account_id, Some(1));
        assert_eq!(after.content_hash.as_deref().map(str::len), Some(64));

        // A list entry for a known article never erases what the page gave.
        let listed = ArticleRecord {
            key: record.key.clone(),
            url: record.url.clone(),
            title: Some("another title from a list".into()),
            status: ArticleStatus::Pending,
            ..ArticleRecord::default()
        };
        let (_, outcome) = store.write(|tx| tx.upsert_article(&listed, NOW + 120)).unwrap();
        assert_eq!(outcome, UpsertOutcome::Unchanged);
        let kept = store.article_by_key(record.key.as_ref().unwrap()).unwrap().unwrap();
        assert_eq!(kept.title.as_deref(), Some("黑洞的第一张照片"));
        assert_eq!(kept.status, ArticleStatus::Ok);
    });
}

fn crate_independent(article: &mpwatch_store::articles::StoredArticle) -> mpwatch_store::articles::StoredArticle {
    mpwatch_store::articles::StoredArticle { last_fetched_at: None, ..article.clone() }
}

#[test]
fn deletion_keeps_content_and_records_when() {
    each_backend("deletion_keeps_content_and_records_when", |db| {
        let mut store = db.open();
        let record = page_record(2650000002, 2);
        store.write(|tx| tx.upsert_article(&record, NOW)).unwrap();
        let deleted = ArticleRecord {
            key: record.key.clone(),
            url: record.url.clone(),
            status: ArticleStatus::Deleted,
            ..ArticleRecord::default()
        };
        let (_, outcome) = store.write(|tx| tx.upsert_article(&deleted, NOW + 86_400)).unwrap();
        assert_eq!(outcome, UpsertOutcome::Updated { status_changed: true, content_changed: false });
        let stored = store.article_by_key(record.key.as_ref().unwrap()).unwrap().unwrap();
        assert_eq!(stored.status, ArticleStatus::Deleted);
        assert_eq!(stored.status_changed_at, Some(NOW + 86_400));
        assert_eq!(stored.content_text.as_deref(), Some("正文内容"));
        assert_eq!(stored.title.as_deref(), Some("黑洞的第一张照片"));
        // Seeing it deleted again does not move the time of the change.
        store.write(|tx| tx.upsert_article(&deleted, NOW + 2 * 86_400)).unwrap();
        let again = store.article_by_key(record.key.as_ref().unwrap()).unwrap().unwrap();
        assert_eq!(again.status_changed_at, Some(NOW + 86_400));
    });
}

/// A page updates its article: indexed columns are set only when their value
/// changes, and then they are (time, short link, account found later, status back
/// to ok after a deletion).
#[test]
fn a_page_updates_the_indexed_columns_that_changed() {
    each_backend("a_page_updates_the_indexed_columns_that_changed", |db| {
        let mut store = db.open();
        let listed = ArticleRecord {
            published_at: Some(NOW - 7200),
            status: ArticleStatus::Pending,
            content_text: None,
            ..page_record(2650000005, 1)
        };
        store.write(|tx| tx.upsert_article(&listed, NOW)).unwrap();
        let key = listed.key.clone().unwrap();
        assert_eq!(store.article_by_key(&key).unwrap().unwrap().account_id, None, "no account yet");
        store.write(|tx| tx.add_account(&NewAccount::with_biz(biz()), NOW)).unwrap();
        let page =
            ArticleRecord { short_url: Some("https://mp.weixin.qq.com/s/AbCdEf".into()), ..page_record(2650000005, 1) };
        let (_, outcome) = store.write(|tx| tx.upsert_article(&page, NOW + 60)).unwrap();
        assert!(matches!(outcome, UpsertOutcome::Updated { status_changed: true, .. }), "{outcome:?}");
        let stored = store.article_by_key(&key).unwrap().unwrap();
        assert_eq!(stored.published_at, Some(NOW - 3600));
        assert_eq!(stored.short_url.as_deref(), Some("https://mp.weixin.qq.com/s/AbCdEf"));
        assert_eq!(stored.account_id, Some(1));
        assert_eq!(stored.status, ArticleStatus::Ok);
        assert_eq!(
            store.article_by_short_url("https://mp.weixin.qq.com/s/AbCdEf").unwrap().map(|a| a.id),
            Some(stored.id)
        );
        // Deleted, then back: ok again, with the time of the change.
        let deleted = ArticleRecord {
            key: Some(key.clone()),
            url: page.url.clone(),
            status: ArticleStatus::Deleted,
            ..ArticleRecord::default()
        };
        store.write(|tx| tx.upsert_article(&deleted, NOW + 120)).unwrap();
        store.write(|tx| tx.upsert_article(&page, NOW + 180)).unwrap();
        let back = store.article_by_key(&key).unwrap().unwrap();
        assert_eq!((back.status, back.status_changed_at), (ArticleStatus::Ok, Some(NOW + 180)));
    });
}

#[test]
fn changed_content_is_detected_by_hash() {
    each_backend("changed_content_is_detected_by_hash", |db| {
        let mut store = db.open();
        let record = page_record(2650000003, 1);
        store.write(|tx| tx.upsert_article(&record, NOW)).unwrap();
        let edited = ArticleRecord { content_text: Some("修改后的正文".into()), ..record.clone() };
        let (_, outcome) = store.write(|tx| tx.upsert_article(&edited, NOW + 10)).unwrap();
        assert_eq!(outcome, UpsertOutcome::Updated { status_changed: false, content_changed: true });
    });
}

#[test]
fn snapshots_are_append_only_and_one_per_rung() {
    each_backend("snapshots_are_append_only_and_one_per_rung", |db| {
        let mut store = db.open();
        let (article, _) = store.write(|tx| tx.upsert_article(&page_record(2650000004, 1), NOW)).unwrap();
        let first = store.write(|tx| tx.insert_snapshot(article, &snapshot(NOW, Some(3600), 120))).unwrap();
        let retried = store.write(|tx| tx.insert_snapshot(article, &snapshot(NOW + 5, Some(3600), 125))).unwrap();
        let adhoc = store.write(|tx| tx.insert_snapshot(article, &snapshot(NOW + 9, None, 130))).unwrap();
        assert!(first.is_some());
        assert!(retried.is_none(), "a rung is stored once");
        assert!(adhoc.is_some());
        let history = store.snapshots_of(article).unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].age_seconds, Some(3600), "age = observed_at - published_at");
        let error = store.connection().execute("UPDATE metric_snapshots SET reads = 0", []).unwrap_err().to_string();
        assert!(error.contains("append-only"), "{error}");
        let latest: i64 = store
            .connection()
            .query_row("SELECT reads FROM v_latest_metrics WHERE article_id = ?1", [article], |r| r.get(0))
            .unwrap();
        assert_eq!(latest, 130);
    });
}

#[test]
fn purge_deletes_everything_of_the_account_and_reports_it() {
    each_backend("purge_deletes_everything_of_the_account_and_reports_it", |db| {
        let mut store = db.open();
        let new = NewAccount {
            sources: vec![NewSource { kind: SourceKind::ProfileExt, locator: biz().to_string() }],
            ..NewAccount::with_biz(biz())
        };
        let account = store.write(|tx| tx.add_account(&new, NOW)).unwrap();
        for mid in 1..=3 {
            let (article, _) = store.write(|tx| tx.upsert_article(&page_record(mid, 1), NOW)).unwrap();
            store.write(|tx| tx.insert_snapshot(article, &snapshot(NOW, Some(3600), 10))).unwrap();
        }
        let report = store.write(|tx| tx.purge_account(account.id)).unwrap();
        assert_eq!((report.articles, report.snapshots, report.sources), (3, 3, 1));
        for table in ["accounts", "articles", "metric_snapshots", "account_sources"] {
            assert_eq!(count(&store, table), 0, "{table}");
        }
    });
}

#[test]
fn open_items_are_those_queueing_again_would_leave_unchanged() {
    each_backend("open_items_are_those_queueing_again_would_leave_unchanged", |db| {
        let mut store = db.open();
        store
            .write(|tx| {
                tx.enqueue("metrics", "1:3600", 5, NOW + 100, NOW)?;
                tx.enqueue("metrics", "2:3600", 5, NOW, NOW)?;
                tx.enqueue("metrics", "3:0", 5, NOW + 50, NOW)?;
                tx.enqueue("page", "https://mp.weixin.qq.com/s?x=1", 0, NOW, NOW)
            })
            .unwrap();
        let leased = store.write(|tx| tx.lease_work(&["metrics"], 1, NOW + 600, NOW)).unwrap();
        assert_eq!(leased[0].target, "2:3600");
        let done = store.write(|tx| tx.lease_work(&["metrics"], 1, NOW + 600, NOW + 50)).unwrap();
        assert_eq!(done[0].target, "3:0");
        assert!(store.write(|tx| tx.complete_work(done[0].id, None, NOW + 51)).unwrap());

        let open = store.open_items("metrics").unwrap();
        let expected: std::collections::HashMap<String, Option<i64>> =
            [("1:3600".to_string(), Some(NOW + 100)), ("2:3600".to_string(), None)].into_iter().collect();
        assert_eq!(open, expected, "pending with its time, leased without, done and other kinds absent");
    });
}

#[test]
fn queue_leases_expire_and_acknowledgement_commits_with_the_write() {
    each_backend("queue_leases_expire_and_acknowledgement_commits_with_the_write", |db| {
        let mut store = db.open();
        store
            .write(|tx| {
                tx.enqueue("page", "https://mp.weixin.qq.com/s?x=1", 0, NOW, NOW)?;
                tx.enqueue("page", "https://mp.weixin.qq.com/s?x=2", 5, NOW, NOW)?;
                tx.enqueue("page", "https://mp.weixin.qq.com/s?x=2", 0, NOW, NOW)?;
                tx.enqueue("metrics", "later", 0, NOW + 100, NOW)
            })
            .unwrap();
        assert_eq!(count(&store, "work_queue"), 3);
        let leased = store.write(|tx| tx.lease_work(&["page"], 10, NOW + 60, NOW)).unwrap();
        assert_eq!(leased.len(), 2);
        assert_eq!(leased[0].target, "https://mp.weixin.qq.com/s?x=2", "higher priority first");
        // A second worker finds nothing until the lease expires (a crashed worker).
        assert!(store.write(|tx| tx.lease_work(&[], 10, NOW + 61, NOW + 1)).unwrap().is_empty());
        let again = store.write(|tx| tx.lease_work(&["page"], 10, NOW + 200, NOW + 60)).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(again[0].attempts, 2);

        // The write and the acknowledgement fail together.
        let item = again[0].clone();
        let result: Result<(), StoreError> = store.write(|tx| {
            tx.upsert_article(&page_record(7, 1), NOW + 61)?;
            tx.complete_work(item.id, None, NOW + 61)?;
            Err(StoreError::NotFound("simulated crash before commit".into()))
        });
        assert!(result.is_err());
        assert_eq!(count(&store, "articles"), 0);
        let state: String = store
            .connection()
            .query_row("SELECT state FROM work_queue WHERE id = ?1", [item.id], |r| r.get(0))
            .unwrap();
        assert_eq!(state, "leased");

        store.write(|tx| tx.retry_work(again[1].id, None, NOW + 500, "HTTP 503", NOW + 61)).unwrap();
        store.write(|tx| tx.complete_work(item.id, None, NOW + 62)).unwrap();
        let ready = store.write(|tx| tx.lease_work(&[], 10, NOW + 700, NOW + 400)).unwrap();
        assert_eq!(ready.len(), 1, "only the metrics item is due");
        assert_eq!(ready[0].kind, "metrics");
    });
}

#[test]
fn a_reader_sees_consistent_data_while_a_writer_commits() {
    each_backend("a_reader_sees_consistent_data_while_a_writer_commits", |db| {
        let path = db.location().to_path_buf();
        drop(open(&path));
        let done = Arc::new(AtomicBool::new(false));
        let writer = {
            let path = path.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut store = open(&path);
                for mid in 1..=300u64 {
                    // Each article and its snapshot land together.
                    store
                        .write(|tx| {
                            let (id, _) = tx.upsert_article(&page_record(mid, 1), NOW)?;
                            tx.insert_snapshot(id, &snapshot(NOW, Some(3600), mid as i64))?;
                            Ok(())
                        })
                        .unwrap();
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        let reader = open(&path);
        let mut observations = 0;
        loop {
            let finished = done.load(Ordering::SeqCst);
            let (articles, snapshots): (i64, i64) = reader
                .read(|conn| {
                    let articles = conn.query_row("SELECT count(*) FROM articles", [], |r| r.get(0)).unwrap();
                    let snapshots = conn.query_row("SELECT count(*) FROM metric_snapshots", [], |r| r.get(0)).unwrap();
                    Ok((articles, snapshots))
                })
                .unwrap();
            assert_eq!(articles, snapshots, "a reader saw half of a write");
            observations += 1;
            if finished {
                assert_eq!(articles, 300);
                break;
            }
        }
        writer.join().unwrap();
        assert!(observations > 1);
    });
}

/// The sources a crawl asks: enabled sources of enabled accounts, of the accounts asked
/// for (all when none are named).
#[test]
fn active_sources_are_those_of_the_enabled_accounts_asked_for() {
    each_backend("active_sources_are_those_of_the_enabled_accounts_asked_for", |db| {
        let mut store = db.open();
        let ids: Vec<i64> = (1..=3u64)
            .map(|n| {
                let biz = Biz::from_numeric_id(3_000_000_000 + n);
                let new = NewAccount {
                    sources: vec![
                        NewSource { kind: SourceKind::ProfileExt, locator: biz.to_string() },
                        NewSource { kind: SourceKind::Feed, locator: format!("https://feeds.example.invalid/{n}.xml") },
                    ],
                    ..NewAccount::with_biz(biz)
                };
                store.write(|tx| tx.add_account(&new, NOW)).unwrap().id
            })
            .collect();
        store.write(|tx| tx.disable_account(ids[2], NOW)).unwrap();
        let accounts_of = |sources: Vec<(mpwatch_store::accounts::Source, Option<Biz>)>| -> Vec<i64> {
            sources
                .iter()
                .map(|(source, biz)| {
                    assert!(biz.is_some());
                    source.account_id
                })
                .collect()
        };
        assert_eq!(accounts_of(store.active_sources(&[]).unwrap()), vec![ids[0], ids[0], ids[1], ids[1]]);
        assert_eq!(accounts_of(store.active_sources(&[ids[1], ids[2]]).unwrap()), vec![ids[1], ids[1]]);
        assert!(store.active_sources(&[ids[2]]).unwrap().is_empty(), "a disabled account is not crawled");
    });
}

/// Version 10 takes the ranks of accounts that published nothing away and keeps the
/// others' ranks and values.
#[test]
fn migration_10_unranks_silent_accounts_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v9.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for (version, sql) in mpwatch_store::MIGRATIONS.iter().filter(|(version, _)| *version <= 9) {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at, mpwatch_version) VALUES (?1, 0, 'test')",
                [version],
            )
            .unwrap();
        }
        conn.pragma_update(None, "user_version", 9).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts (id, nickname, added_at, updated_at) VALUES (1, 'a', 0, 0), (2, 'b', 0, 0), (3, 'quiet', 0, 0);",
        )
        .unwrap();
        // Two days: account 3 published nothing on the first, and was third on the second.
        for (start, n) in [(0, [5, 3, 0]), (86_400, [5, 3, 1])] {
            for (account, n) in (1..=3).zip(n) {
                conn.execute(
                    "INSERT INTO index_periods VALUES (?1, 'day', ?2, ?2 + 86400, 'x', 1, ?3, 1, 1, ?3, 0, 0, 0, 0, 0, 0, 0,
                        0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, 0, 0, 0)",
                    (account, start, n),
                )
                .unwrap();
                let rank = 4 - account;
                let change: Option<i64> = (start > 0).then_some(0);
                conn.execute(
                    "INSERT INTO index_values VALUES (?1, 'day', ?2, 'nri', ?3, ?4, ?5)",
                    (account, start, n as f64, rank.min(3), change),
                )
                .unwrap();
            }
        }
    }
    let store = Store::open(&path, &StoreOptions::default()).unwrap();
    type Row = (i64, i64, Option<i64>, Option<i64>, f64);
    let rows: Vec<Row> = store
        .connection()
        .prepare("SELECT period_start, account_id, rank, rank_change, value FROM v_rankings ORDER BY 1, 2")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        vec![
            (0, 1, Some(3), None, 5.0),
            (0, 2, Some(2), None, 3.0),
            (0, 3, None, None, 0.0),
            (86_400, 1, Some(3), Some(0), 5.0),
            (86_400, 2, Some(2), Some(0), 3.0),
            // Ranked now, silent before: no change to show.
            (86_400, 3, Some(1), None, 1.0),
        ]
    );
}

/// Version 16 keeps what version 12's triggers indexed: nothing waits after the
/// migration, and an edit of an article indexed before it takes the old words out.
#[test]
fn migration_16_keeps_the_index_and_follows_edits() {
    use mpwatch_store::search_index::Waiting;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v15.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for (version, sql) in mpwatch_store::MIGRATIONS.iter().filter(|(version, _)| *version <= 15) {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at, mpwatch_version) VALUES (?1, 0, 'test')",
                [version],
            )
            .unwrap();
        }
        conn.pragma_update(None, "user_version", 15).unwrap();
        conn.execute(
            "INSERT INTO articles (id, biz, mid, idx, url, title, content_text, status, first_seen_at)
             VALUES (7, 'MzA5MjkzMTA1Mw==', 1, 1, 'https://mp.weixin.qq.com/s?x', '黑洞照片', '事件视界望远镜', 'ok', 0)",
            [],
        )
        .unwrap();
    }
    let mut store = Store::open(&path, &StoreOptions::default()).unwrap();
    assert_eq!(store.waiting_for_search_index().unwrap(), 0);
    assert_eq!(count(&store, "articles_fts WHERE articles_fts MATCH '视界望远'"), 1);
    let settings: Vec<(String, i64)> = store
        .connection()
        .prepare("SELECT k, v FROM articles_fts_config WHERE k IN ('automerge', 'crisismerge', 'hashsize') ORDER BY k")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(settings, [("automerge".into(), 16), ("crisismerge".into(), 64), ("hashsize".into(), 16_777_216)]);
    store.connection().execute("UPDATE articles SET content_text = '引力透镜' WHERE id = 7", []).unwrap();
    assert_eq!(count(&store, "articles_fts WHERE articles_fts MATCH '视界望远'"), 0);
    assert_eq!(store.waiting_for_search_index().unwrap(), 1);
    assert_eq!(store.write(|tx| tx.index_for_search(10, Waiting::Fetched)).unwrap(), 1);
    assert_eq!(count(&store, "articles_fts WHERE articles_fts MATCH '引力透镜'"), 1);
    // A new id (no mpwatch command does this; a user's tool might): the old entry goes.
    store.connection().execute("UPDATE articles SET id = 8 WHERE id = 7", []).unwrap();
    assert_eq!(count(&store, "articles_fts WHERE articles_fts MATCH '引力透镜'"), 0);
    assert_eq!(store.index_all_for_search().unwrap(), 1);
    assert_eq!(
        store
            .connection()
            .query_row("SELECT rowid FROM articles_fts WHERE articles_fts MATCH '引力透镜'", [], |r| r
                .get::<_, i64>(0))
            .unwrap(),
        8
    );
    store
        .connection()
        .execute("INSERT INTO articles_fts (articles_fts, rank) VALUES ('integrity-check', 1)", [])
        .unwrap();
}

/// The trigram index finds Chinese text of three characters or more inside words, and
/// follows inserts, edits and deletions: new text once a batch adds it, old text out at
/// once.
#[test]
fn full_text_search_finds_chinese_and_stays_in_step() {
    use mpwatch_store::search_index::Waiting;
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("fts.db"), &StoreOptions::default()).unwrap();
    let biz = Biz::parse("MzA5MjkzMTA1Mw==").unwrap();
    let record = |idx: u32, title: &str, body: &str| ArticleRecord {
        url: format!("https://mp.weixin.qq.com/s?__biz={biz}&mid=7&idx={idx}"),
        key: Some(ArticleKey { biz: biz.clone(), mid: 7, idx }),
        title: Some(title.into()),
        digest: Some("每周科研速递".into()),
        content_text: Some(body.into()),
        status: ArticleStatus::Ok,
        ..ArticleRecord::default()
    };
    let ids = store
        .write(|tx| {
            let (first, _) = tx.upsert_article(&record(1, "量子计算的新进展", "超导量子比特的相干时间又长了"), 100)?;
            let (second, _) = tx.upsert_article(&record(2, "基因编辑十问", "CRISPR 与伦理"), 100)?;
            Ok((first, second))
        })
        .unwrap();
    let found = |store: &Store, query: &str| -> Vec<i64> {
        store
            .connection()
            .prepare("SELECT rowid FROM articles_fts WHERE articles_fts MATCH ?1 ORDER BY rowid")
            .unwrap()
            .query_map([query], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    // Stored articles wait for the index until a batch adds them.
    assert!(found(&store, "子计算").is_empty());
    assert_eq!(store.waiting_for_search_index().unwrap(), 2);
    assert_eq!(store.index_all_for_search().unwrap(), 2);
    assert_eq!(store.waiting_for_search_index().unwrap(), 0);
    assert_eq!(found(&store, "子计算"), vec![ids.0], "inside a word");
    assert_eq!(found(&store, "相干时间"), vec![ids.0], "in the body");
    assert_eq!(found(&store, "科研速递"), vec![ids.0, ids.1], "in the digest");
    assert_eq!(found(&store, "title:基因编辑"), vec![ids.1]);
    // Two characters are below a trigram: a LIKE over the articles finds them.
    let like: i64 = store
        .connection()
        .query_row(
            "SELECT count(*) FROM articles WHERE title LIKE '%量子%' OR content_text LIKE '%量子%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(like, 1);
    // An edit takes the old text out at once and puts the new one in with the next batch.
    store.write(|tx| tx.upsert_article(&record(1, "拓扑材料的新进展", "超导量子比特"), 200)).unwrap();
    assert!(found(&store, "子计算").is_empty());
    assert!(found(&store, "拓扑材料").is_empty());
    assert_eq!(store.index_all_for_search().unwrap(), 1);
    assert_eq!(found(&store, "拓扑材料"), vec![ids.0]);
    // Edited twice before a batch: indexed once, with the latest text.
    store.write(|tx| tx.upsert_article(&record(1, "暗物质的新进展", "超导量子比特"), 300)).unwrap();
    store.write(|tx| tx.upsert_article(&record(1, "引力波的新进展", "超导量子比特"), 400)).unwrap();
    assert_eq!(store.index_all_for_search().unwrap(), 1);
    assert!(found(&store, "暗物质").is_empty());
    assert_eq!(found(&store, "引力波"), vec![ids.0]);
    // A batch of fetched articles leaves those still waiting for their page.
    let listed = store
        .write(|tx| {
            let listed = ArticleRecord {
                content_text: None,
                status: ArticleStatus::Pending,
                ..record(3, "列表里的天文学新闻", "")
            };
            Ok(tx.upsert_article(&listed, 500)?.0)
        })
        .unwrap();
    assert_eq!(store.write(|tx| tx.index_for_search(100, Waiting::Fetched)).unwrap(), 0);
    assert_eq!(store.waiting_for_search_index().unwrap(), 1);
    assert_eq!(store.write(|tx| tx.index_for_search(100, Waiting::All)).unwrap(), 1);
    assert_eq!(found(&store, "天文学"), vec![listed]);
    // Deletions: of an indexed article at once, of a waiting one with its note.
    let delete = |store: &mut Store, id: i64| {
        store
            .write(|tx| {
                tx.connection()
                    .execute("DELETE FROM articles WHERE id = ?1", [id])
                    .map_err(|source| StoreError::Sqlite { context: "deleting".into(), source })?;
                Ok(())
            })
            .unwrap()
    };
    delete(&mut store, ids.1);
    assert!(found(&store, "基因编辑").is_empty());
    store.write(|tx| tx.upsert_article(&record(3, "天文学周报", "星系"), 600)).unwrap();
    assert_eq!(store.waiting_for_search_index().unwrap(), 1);
    delete(&mut store, listed);
    assert_eq!(store.waiting_for_search_index().unwrap(), 0);
    assert!(found(&store, "天文学").is_empty());
    assert_eq!(found(&store, "新进展"), vec![ids.0]);
    // FTS5's own check: the index holds exactly the articles' current text.
    store
        .connection()
        .execute("INSERT INTO articles_fts (articles_fts, rank) VALUES ('integrity-check', 1)", [])
        .unwrap();
}

/// Stores `n` fetched articles of one account in one transaction, article `idx` with
/// `text(idx)`'s title and body: they wait for the full-text index.
fn store_fetched_articles(store: &mut Store, n: u32, text: impl Fn(u32) -> (String, Option<String>)) {
    let biz = Biz::parse("MzA5MjkzMTA1Mw==").unwrap();
    store
        .write(|tx| {
            for idx in 1..=n {
                let (title, body) = text(idx);
                let record = ArticleRecord {
                    url: format!("https://mp.weixin.qq.com/s?__biz={biz}&mid=9&idx={idx}"),
                    key: Some(ArticleKey { biz: biz.clone(), mid: 9, idx }),
                    title: Some(title),
                    content_text: body,
                    status: ArticleStatus::Ok,
                    ..ArticleRecord::default()
                };
                tx.upsert_article(&record, 100)?;
            }
            Ok(())
        })
        .unwrap();
}

/// A batch of articles enters the full-text index as one FTS5 segment: written once,
/// where a segment per article (what one statement per article, or a trigger per row,
/// gives) is merged again and again (docs/benchmarks.md).
#[test]
fn a_search_index_batch_writes_one_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("segments.db"), &StoreOptions::default()).unwrap();
    store_fetched_articles(&mut store, 40, |idx| {
        (format!("第{idx}篇：星系的形成"), Some(format!("正文{idx}，暗物质与星系")))
    });
    assert_eq!(store.index_all_for_search().unwrap(), 40);
    let segments = count(&store, "(SELECT DISTINCT segid FROM articles_fts_idx)");
    assert_eq!(segments, 1);
    assert_eq!(count(&store, "articles_fts WHERE articles_fts MATCH '暗物质'"), 40);
}

/// Maintenance indexes what a stopped or killed crawl left waiting for the full-text
/// index, and a stopping service does not wait for it.
#[test]
fn maintenance_indexes_articles_left_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("maintain.db"), &StoreOptions::default()).unwrap();
    store_fetched_articles(&mut store, 3, |idx| (format!("留待索引的文章{idx}"), None));
    // Stopping once the prunes are done (three checks, one before the index): nothing
    // is indexed.
    let asked = std::cell::Cell::new(0);
    let stopping = store
        .maintain(0, &|| {
            asked.set(asked.get() + 1);
            asked.get() <= 4
        })
        .unwrap();
    assert!(stopping.stopped_early);
    assert_eq!(asked.get(), 5, "asked again before the index");
    assert_eq!(stopping.indexed_for_search, 0);
    assert_eq!(store.waiting_for_search_index().unwrap(), 3);
    let summary = store.maintain(0, &|| true).unwrap();
    assert_eq!(summary.indexed_for_search, 3);
    assert_eq!(store.waiting_for_search_index().unwrap(), 0);
    assert_eq!(count(&store, "articles_fts WHERE articles_fts MATCH '留待索引'"), 3);
}

/// Several processes (here connections on threads) leasing from one queue at once take
/// disjoint items, and together all of them: on PostgreSQL with no lock between them but
/// the rows', on SQLite through its write lock.
#[test]
fn several_stores_lease_disjoint_work() {
    each_backend("several_stores_lease_disjoint_work", |db| {
        let mut store = db.open();
        store
            .write(|tx| {
                for n in 0..400 {
                    tx.enqueue("page", &format!("https://mp.weixin.qq.com/s?n={n}"), n % 3, NOW, NOW)?;
                }
                Ok(())
            })
            .unwrap();
        let taken: Vec<Vec<i64>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|worker| {
                    scope.spawn(move || {
                        let mut store = db.open();
                        let holder = format!("{worker}@test");
                        let mut mine = Vec::new();
                        loop {
                            let items =
                                store.write(|tx| tx.lease_work_as(&["page"], 8, NOW + 60, NOW, Some(&holder))).unwrap();
                            if items.is_empty() {
                                // Empty because others took these candidates, or because
                                // nothing is left: only the second ends the worker.
                                if count(&store, "work_queue WHERE state = 'pending'") == 0 {
                                    break;
                                }
                                continue;
                            }
                            store
                                .write(|tx| {
                                    for item in &items {
                                        tx.complete_work(item.id, Some(&holder), NOW)?;
                                    }
                                    Ok(())
                                })
                                .unwrap();
                            mine.extend(items.iter().map(|item| item.id));
                        }
                        mine
                    })
                })
                .collect();
            workers.into_iter().map(|worker| worker.join().unwrap()).collect()
        });
        let all: Vec<i64> = taken.iter().flatten().copied().collect();
        let distinct: std::collections::BTreeSet<i64> = all.iter().copied().collect();
        assert_eq!(all.len(), 400, "every item leased once");
        assert_eq!(distinct.len(), 400, "no item leased twice");
        assert_eq!(count(&store, "work_queue WHERE state = 'done'"), 400);
    });
}

/// Each node has its own crawler lock: a second process of a node waits (held), another
/// node takes its own; a dead holder's lock is taken over, and the node list shows what
/// each holds.
#[test]
fn each_node_has_its_crawler_lock_and_the_list_shows_what_it_holds() {
    use mpwatch_store::nodes::{LockOutcome, NodeClaim};
    each_backend("each_node_has_its_crawler_lock_and_the_list_shows_what_it_holds", |db| {
        let mut store = db.open();
        let claim =
            |node: &'static str, holder: &'static str| NodeClaim { node, holder, role: "service", egress: "direct" };
        // A holder lives while its heartbeat is under a minute old.
        let take = |store: &mut Store, claim: NodeClaim<'_>, now: i64| {
            store.write(|tx| tx.take_crawler_lock(&claim, |lock| lock.heartbeat_at > now - 60, now)).unwrap()
        };
        assert_eq!(take(&mut store, claim("a", "1@h"), NOW), LockOutcome::Taken);
        assert_eq!(take(&mut store, claim("b", "2@h"), NOW), LockOutcome::Taken, "another node");
        let LockOutcome::Held(lock) = take(&mut store, claim("a", "3@h"), NOW) else { panic!("a is held") };
        assert_eq!((lock.node.as_str(), lock.holder.as_str()), ("a", "1@h"));
        assert_eq!(take(&mut store, claim("a", "1@h"), NOW + 1), LockOutcome::Taken, "ours again");

        store.write(|tx| tx.enqueue("page", "x", 0, NOW, NOW).map(drop)).unwrap();
        let items = store.write(|tx| tx.lease_work_as(&["page"], 5, NOW + 60, NOW, Some("1@h"))).unwrap();
        assert!(store.write(|tx| tx.lease_credential("wx-main", "a", NOW + 60, NOW)).unwrap());
        assert!(!store.write(|tx| tx.lease_credential("wx-main", "b", NOW + 60, NOW + 1)).unwrap(), "a has it");
        assert!(store.write(|tx| tx.heartbeat_crawler_lock("a", "1@h", Some("crawling"), NOW + 2)).unwrap());
        assert!(!store.write(|tx| tx.heartbeat_crawler_lock("a", "3@h", None, NOW + 2)).unwrap(), "not 3's");
        let nodes = store.nodes(NOW + 2).unwrap();
        let names: Vec<&str> = nodes.iter().map(|n| n.lock.node.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!((nodes[0].work_leased, nodes[0].credentials.clone()), (1, vec!["wx-main".to_string()]));
        assert_eq!(nodes[0].lock.status.as_deref(), Some("crawling"));
        assert_eq!((nodes[1].work_leased, nodes[1].credentials.len()), (0, 0));

        // Renewing a lease keeps the item from others; an ack by another holder is refused.
        assert_eq!(store.write(|tx| tx.renew_leases(&[items[0].id], "1@h", NOW + 120)).unwrap(), 1);
        assert!(
            store.write(|tx| tx.lease_work_as(&["page"], 5, NOW + 200, NOW + 100, Some("2@h"))).unwrap().is_empty()
        );
        let taken = store.write(|tx| tx.lease_work_as(&["page"], 5, NOW + 300, NOW + 121, Some("2@h"))).unwrap();
        assert_eq!(taken.len(), 1, "taken over once the lease ran out");
        assert!(!store.write(|tx| tx.complete_work(items[0].id, Some("1@h"), NOW + 122)).unwrap(), "fenced");
        assert!(store.write(|tx| tx.complete_work(items[0].id, Some("2@h"), NOW + 122)).unwrap());

        // A dead holder's lock is taken over; releasing gives the node's credentials back.
        assert_eq!(take(&mut store, claim("a", "3@h"), NOW + 200), LockOutcome::Taken, "1@h stopped beating");
        store.write(|tx| tx.release_crawler_lock("a", "1@h")).unwrap();
        assert!(store.crawler_lock("a").unwrap().is_some(), "not 1's to release");
        store.write(|tx| tx.release_crawler_lock("a", "3@h")).unwrap();
        assert!(store.crawler_lock("a").unwrap().is_none());
        assert_eq!(store.credential_holder("wx-main", NOW + 201).unwrap(), None);
        assert!(store.write(|tx| tx.lease_credential("wx-main", "b", NOW + 260, NOW + 201)).unwrap());
        assert_eq!(store.credential_holder("wx-main", NOW + 202).unwrap().as_deref(), Some("b"));
    });
}

/// A member of a group commit that counts its runs and may fail after writing.
struct CountedWrite {
    url: String,
    fails: bool,
    runs: Arc<std::sync::atomic::AtomicUsize>,
    outcome: Arc<std::sync::Mutex<Vec<bool>>>,
}

impl mpwatch_store::GroupWrite for CountedWrite {
    fn run(&mut self, tx: &mpwatch_store::Tx<'_>) -> bool {
        self.runs.fetch_add(1, Ordering::SeqCst);
        tx.enqueue("page", &self.url, 0, 0, 0).is_ok() && !self.fails
    }

    fn finish(self: Box<Self>, committed: Result<(), &StoreError>) {
        self.outcome.lock().unwrap().push(committed.is_ok());
    }
}

/// A group whose writes all succeed runs each once, with no savepoint between them; a
/// group with a failing write runs again in savepoints, and only that write's effects
/// are gone.
#[test]
fn a_group_commit_runs_writes_once_and_again_in_savepoints_only_after_a_failure() {
    each_backend("a_group_commit_runs_writes_once_and_again_in_savepoints_only_after_a_failure", |db| {
        let mut store = db.open();
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let outcome = Arc::new(std::sync::Mutex::new(Vec::new()));
        let group = |prefix: &str, failing: Option<usize>| -> Vec<Box<dyn mpwatch_store::GroupWrite>> {
            (0..10)
                .map(|i| -> Box<dyn mpwatch_store::GroupWrite> {
                    Box::new(CountedWrite {
                        url: format!("https://example.invalid/{prefix}/{i}"),
                        fails: failing == Some(i),
                        runs: runs.clone(),
                        outcome: outcome.clone(),
                    })
                })
                .collect()
        };
        store.write_group(group("ok", None));
        assert_eq!(runs.load(Ordering::SeqCst), 10, "each write runs once when none fails");
        assert_eq!(store.open_work().unwrap(), 10);

        runs.store(0, Ordering::SeqCst);
        store.write_group(group("one-fails", Some(6)));
        // Seven runs up to the failure, then all ten again in savepoints.
        assert_eq!(runs.load(Ordering::SeqCst), 17);
        assert_eq!(store.open_work().unwrap(), 19, "the failing write's item must be gone, its group's kept");
        assert_eq!(count(&store, "work_queue WHERE target = 'https://example.invalid/one-fails/6'"), 0);
        // Every write of both groups is told the group committed (the failing one's own
        // error is its result, which the member keeps; see mpwatch-crawl's `Db`).
        let told = outcome.lock().unwrap();
        assert_eq!(told.len(), 20);
        assert!(told.iter().all(|committed| *committed));
    });
}
