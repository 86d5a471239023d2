//! The PostgreSQL backend against a real PostgreSQL: each test gets a database of its
//! own on the cluster named by `MPWATCH_TEST_POSTGRES_URL` (`.ci/run` starts a
//! throwaway one), and skips, saying so, when that is not set.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use mpwatch_pg::copy::{Endpoint, checksums, copy};
use mpwatch_pg::test_database::TestDatabase;
use mpwatch_pg::{OpenMode, PgError, PgStore};
use mpwatch_store::{Store, StoreOptions};

const BUSY: Duration = Duration::from_secs(5);

/// Table and view columns of a fresh SQLite database, FTS5 tables aside.
fn sqlite_columns(path: &Path) -> BTreeMap<String, Vec<String>> {
    let store = Store::open(path, &StoreOptions::default()).expect("sqlite");
    let conn = store.connection();
    let mut names = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'articles_fts%'")
        .expect("prepare");
    let names: Vec<String> =
        names.query_map([], |row| row.get(0)).expect("query").collect::<Result<_, _>>().expect("rows");
    names
        .into_iter()
        .map(|name| {
            let mut columns = conn.prepare(&format!("SELECT name FROM pragma_table_info('{name}')")).expect("prepare");
            let columns: Vec<String> =
                columns.query_map([], |row| row.get(0)).expect("query").collect::<Result<_, _>>().expect("rows");
            (name, columns)
        })
        .collect()
}

#[test]
fn the_schema_has_every_sqlite_table_and_view_with_the_same_columns() {
    let Some(database) = TestDatabase::create("the_schema_has_every_sqlite_table_and_view_with_the_same_columns")
    else {
        return;
    };
    let mut store = PgStore::open(database.url(), OpenMode::Migrate).expect("migrate");
    assert_eq!(store.schema_version().expect("version"), mpwatch_store::LATEST_SCHEMA_VERSION);
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = sqlite_columns(&dir.path().join("m.db"));
    let rows = store
        .client()
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
            &[],
        )
        .expect("columns");
    let mut postgres: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        postgres.entry(row.get(0)).or_default().push(row.get(1));
    }
    for (table, columns) in &sqlite {
        assert_eq!(postgres.get(table), Some(columns), "{table} differs");
    }
    let only_postgres: BTreeSet<&str> =
        postgres.keys().map(String::as_str).filter(|name| !sqlite.contains_key(*name)).collect();
    assert!(only_postgres.is_empty(), "tables only on PostgreSQL: {only_postgres:?}");

    // Opening again migrates nothing; so do several nodes at once.
    drop(store);
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let url = database.url().to_string();
            std::thread::spawn(move || PgStore::open(&url, OpenMode::Migrate).map(|_| ()))
        })
        .collect();
    for handle in handles {
        handle.join().expect("thread").expect("concurrent migrate");
    }
    let mut store = PgStore::open(database.url(), OpenMode::Existing).expect("existing");
    let applied: i64 = store.client().query_one("SELECT count(*) FROM schema_migrations", &[]).expect("count").get(0);
    assert_eq!(applied, mpwatch_store::POSTGRES_MIGRATIONS.len() as i64, "each migration once");
    // Snapshots stay append-only.
    let error = store
        .client()
        .batch_execute(
            "INSERT INTO articles (id, biz, mid, idx, url, first_seen_at) VALUES (1, 'b', 1, 1, 'u', 0);
             INSERT INTO metric_snapshots (article_id, observed_at, source) VALUES (1, 0, 'test');
             UPDATE metric_snapshots SET reads = 5",
        )
        .expect_err("update of a snapshot");
    assert!(format!("{error:?}").contains("append-only"), "{error:?}");
}

#[test]
fn a_read_only_open_refuses_an_empty_database_and_another_programs() {
    let Some(database) = TestDatabase::create("a_read_only_open_refuses_an_empty_database_and_another_programs") else {
        return;
    };
    let error = PgStore::open(database.url(), OpenMode::Existing).expect_err("empty");
    assert!(matches!(error, PgError::Sqlite(mpwatch_store::StoreError::MissingPostgres { .. })), "{error}");
    let mut admin = postgres::Client::connect(database.url(), postgres::NoTls).expect("connect");
    admin.batch_execute("CREATE TABLE invoices (id int)").expect("foreign table");
    let error = PgStore::open(database.url(), OpenMode::Migrate).expect_err("foreign");
    assert!(matches!(error, PgError::Sqlite(mpwatch_store::StoreError::ForeignPostgres { tables: 1, .. })), "{error}");
    let tables: i64 =
        admin.query_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", &[]).expect("count").get(0);
    assert_eq!(tables, 1, "another program's database is left as it is");
}

/// A role that owns its database but is no superuser migrates it (pg_trgm is trusted);
/// the schema of another role's database it may not write is refused in one line.
#[test]
fn a_database_owner_migrates_without_being_superuser() {
    let Some(database) = TestDatabase::create("a_database_owner_migrates_without_being_superuser") else {
        return;
    };
    let mut admin = postgres::Client::connect(database.url(), postgres::NoTls).expect("connect");
    let role = format!("mpwatch_owner_{}", std::process::id());
    admin.batch_execute(&format!("DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN")).expect("role");
    let name = database.url().split("///").nth(1).and_then(|rest| rest.split('?').next()).expect("database name");
    admin
        .batch_execute(&format!("ALTER DATABASE {name} OWNER TO {role}; ALTER SCHEMA public OWNER TO {role}"))
        .expect("owner");
    let as_owner = database.url().replace("user=postgres", &format!("user={role}"));
    let mut store = PgStore::open(&as_owner, OpenMode::Migrate).expect("the owner migrates");
    assert_eq!(store.schema_version().expect("version"), mpwatch_store::LATEST_SCHEMA_VERSION);
    drop(store);
    drop(admin);
}

#[test]
fn errors_never_show_the_password() {
    let Some(database) = TestDatabase::create("errors_never_show_the_password") else {
        return;
    };
    // A database that does not exist, with a password in both places a URL can hold one.
    let url = database.url().replacen(":///", "://postgres:hunter2-secret@/", 1).replace("/mpwatch_test_", "/missing_");
    let url = format!("{url}&password=hunter2-secret");
    let error = PgStore::open(&url, OpenMode::Migrate).expect_err("missing database");
    let text = error.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("connecting to PostgreSQL database"), "{text}");
}

/// A SQLite database with rows in every copied table: every type, NULLs, Chinese text,
/// a blob, doubles that do not round-trip through text.
fn filled_sqlite(path: &Path) {
    let mut store = Store::open(path, &StoreOptions::default()).expect("sqlite");
    store
        .write(|tx| {
            tx.connection()
                .execute_batch(
                    "INSERT INTO accounts VALUES (1, 'MzA5', 'gh_1', 'huanqiukexue', '环球科学', 1, 10, 11);
                     INSERT INTO accounts VALUES (7, NULL, NULL, 'keyanquan', NULL, 0, 12, 13);
                     INSERT INTO account_groups VALUES (1, '出版'), (7, 'Zeta'), (7, 'alpha');
                     INSERT INTO account_sources (id, account_id, kind, locator, added_at, list_covered_through)
                        VALUES (3, 1, 'profile_ext', 'MzA5', 14, 99);
                     INSERT INTO articles (id, account_id, biz, mid, idx, url, title, content_text, published_at, first_seen_at, status)
                        VALUES (5, 1, 'MzA5', 2247483650, 1, 'https://mp.weixin.qq.com/s?x', '标题 “引号”', '正文\n第二行', 1700000000, 1700000100, 'ok');
                     INSERT INTO article_bodies VALUES (5, '<p>正文</p>');
                     INSERT INTO metric_snapshots VALUES (1, 5, 1700003600, 3600, 3600, 100001, 1, 3, 4, NULL, 0, 'getappmsgext');
                     INSERT INTO metric_snapshots VALUES (2, 5, 1700007200, 7200, NULL, 5, 0, NULL, NULL, NULL, NULL, 'appmsg_bar');
                     INSERT INTO raw_pages VALUES (1, 5, 1700000100, 'u', 'zstd', 3, x'00ff10');
                     INSERT INTO crawl_runs (id, trigger, job, started_at, result, holder) VALUES (2, 'adhoc', 'crawl', 1, 'ok', '1@h');
                     INSERT INTO fetch_log VALUES (1, 2, 5, 'article_page', 'u', 200, 'ok', 1234, 56);
                     INSERT INTO work_queue (id, kind, target, created_at, updated_at, state) VALUES (4, 'page', 'u', 1, 2, 'done');
                     INSERT INTO cooldowns VALUES ('credential', 'wx-main', '', 99, 2, 'ret -6', 90);
                     INSERT INTO cooldowns VALUES ('host', 'mp.weixin.qq.com', 'node-2', 99, 1, '环境异常', 90);
                     INSERT INTO index_periods VALUES (1, 'day', 1699977600, 1700064000, '2023-11-15', 1.0, 1, 1, 1,
                        100001.0, 100001.0, 100001.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 0.1, 0.1, 0.1, 0, 0, 0,
                        0.00006999930000699993, 100001.0, 0.30000000000000004, 0, 1, 42, 0);
                     INSERT INTO index_values VALUES (1, 'day', 1699977600, 'nri', 123.45678901234567, 1, NULL);
                     INSERT INTO index_state VALUES (1, 5, 2, 43, 'abc');
                     INSERT INTO service_jobs (name, kind, last_run_id) VALUES ('metrics', 'metrics', 2);
                     INSERT INTO crawl_requests (id, requested_at, options, run_id) VALUES (1, 3, '{}', 2);
                     INSERT INTO alerts VALUES (1, 4, 'cooldown', 'credential:wx-main', '限流', 1, 0);
                     INSERT INTO credential_states VALUES ('wx-main', 'valid', 5);",
                )
                .map_err(|source| mpwatch_store::StoreError::Sqlite { context: "filling".into(), source })
        })
        .expect("fill");
}

#[test]
fn db_copy_round_trips_sqlite_postgres_sqlite_identically() {
    let Some(database) = TestDatabase::create("db_copy_round_trips_sqlite_postgres_sqlite_identically") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let original = dir.path().join("original.db");
    filled_sqlite(&original);
    let postgres = Endpoint::Postgres(database.url().to_string());
    let there = copy(&Endpoint::Sqlite(original.clone()), &postgres, BUSY).expect("sqlite -> postgres");
    let back_path = dir.path().join("back.db");
    let back = copy(&postgres, &Endpoint::Sqlite(back_path.clone()), BUSY).expect("postgres -> sqlite");
    let sums = |report: &[mpwatch_pg::copy::TableReport]| -> Vec<(String, u64, String)> {
        report.iter().map(|table| (table.table.to_string(), table.rows, table.checksum.clone())).collect()
    };
    assert_eq!(sums(&there.tables), sums(&back.tables));
    assert_eq!(sums(&checksums(&Endpoint::Sqlite(original.clone()), BUSY).expect("sums")), sums(&back.tables));
    assert!(there.tables.iter().filter(|table| !table.compared_only).all(|table| table.rows > 0), "{there:?}");

    // The copy's full-text index answers as the original's does.
    let count = |path: &Path, sql: &str| -> i64 {
        let store = Store::open_read_only(path, BUSY).expect("open");
        store.connection().query_row(sql, [], |row| row.get(0)).expect("count")
    };
    let search = "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH '\"第二行\"'";
    assert_eq!(count(&back_path, search), 1);
    assert_eq!(count(&back_path, "SELECT max(id) FROM accounts"), 7);

    // Ids continue after the copied ones on PostgreSQL.
    let mut store = PgStore::open(database.url(), OpenMode::Existing).expect("open");
    let next: i64 = store
        .client()
        .query_one("INSERT INTO accounts (alias, added_at, updated_at) VALUES ('new', 1, 1) RETURNING id", &[])
        .expect("insert")
        .get(0);
    assert_eq!(next, 8);

    // A destination with data is refused, and left as it was.
    let error = copy(&Endpoint::Sqlite(original.clone()), &postgres, BUSY).expect_err("not empty");
    assert!(error.to_string().contains("already holds data (accounts: 3 rows)"), "{error}");
    let error = copy(&postgres, &Endpoint::Sqlite(original.clone()), BUSY).expect_err("not empty");
    assert!(error.to_string().contains("already holds data"), "{error}");
    // A failed copy into a new file leaves no file.
    let nowhere = dir.path().join("nowhere.db");
    let error = copy(&Endpoint::Sqlite(nowhere.clone()), &postgres, BUSY).expect_err("no source");
    assert!(error.to_string().contains("no database at"), "{error}");
    assert!(!nowhere.exists());
}

#[test]
fn the_views_read_the_same_on_both_backends() {
    let Some(database) = TestDatabase::create("the_views_read_the_same_on_both_backends") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let original = dir.path().join("original.db");
    filled_sqlite(&original);
    copy(&Endpoint::Sqlite(original.clone()), &Endpoint::Postgres(database.url().to_string()), BUSY).expect("copy");
    let store = Store::open_read_only(&original, BUSY).expect("open");
    let mut pg = PgStore::open(database.url(), OpenMode::Existing).expect("open");
    for (view, columns) in [
        (
            "v_articles",
            "id, account_name, published_at_shanghai, first_seen_at_shanghai, metrics_observed_at_shanghai, reads, snapshot_count",
        ),
        ("v_latest_metrics", "article_id, observed_at_shanghai, reads, reads_capped, snapshot_count"),
        ("v_rankings", "first_day, index_name, rank, account_name, reads_per_article, value"),
    ] {
        let sql = format!("SELECT {columns} FROM {view}");
        let sqlite: Vec<String> = {
            let mut statement = store.connection().prepare(&sql).expect("prepare");
            let count = statement.column_count();
            statement
                .query_map([], |row| {
                    (0..count)
                        .map(|at| {
                            Ok(match row.get_ref(at)? {
                                rusqlite::types::ValueRef::Null => "NULL".to_string(),
                                rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                                rusqlite::types::ValueRef::Real(v) => v.to_string(),
                                rusqlite::types::ValueRef::Text(v) => String::from_utf8_lossy(v).into_owned(),
                                rusqlite::types::ValueRef::Blob(_) => "blob".to_string(),
                            })
                        })
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .map(|values| values.join("|"))
                })
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows")
        };
        let postgres: Vec<String> = pg
            .client()
            .simple_query(&sql)
            .expect("query")
            .into_iter()
            .filter_map(|message| match message {
                postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|at| {
                            row.get(at).map_or("NULL".to_string(), |text| {
                                // Doubles print alike once parsed; integers and text as they are.
                                text.parse::<f64>()
                                    .ok()
                                    .filter(|_| text.contains('.'))
                                    .map_or(text.to_string(), |v| v.to_string())
                            })
                        })
                        .collect::<Vec<_>>()
                        .join("|"),
                ),
                _ => None,
            })
            .collect();
        assert_eq!(sqlite, postgres, "{view}");
        assert!(!sqlite.is_empty(), "{view} is empty");
    }
}
