//! A synthetic history of tracked accounts, written through the store API.
//!
//! Everything derives from the seed, an account and a day, so the history up to any
//! instant is the same whichever way it was written: in one run, or a year and then a
//! day. Articles follow the shape of real publishing accounts: most days one push of
//! one to four articles in the daytime, read counts log-normal around the account's
//! size (headlines read most), 赞 / 在看 / shares / comments as small fractions of reads,
//! and one snapshot per ladder rung, observed a few minutes after it falls due; a few
//! rungs are missed and a few observed late, as a real crawler's are.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use mpwatch_core::config::CrawlConfig;
use mpwatch_core::{ArticleKey, ArticleKind, ArticleStatus, Biz};
use mpwatch_store::accounts::NewAccount;
use mpwatch_store::articles::{ArticleRecord, Snapshot};
use mpwatch_store::{GroupWrite, Store, StoreError, StoreOptions, Tx};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use rand_distr::{Distribution as _, LogNormal};

const DAY: i64 = 86_400;

/// `mpwatch-bench history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The database (created when missing).
    #[arg(long)]
    db: PathBuf,
    /// Tracked accounts.
    #[arg(long, default_value_t = 300)]
    accounts: u64,
    /// The first day of publishing (unix seconds of its midnight). Default: 2025-11-01
    /// 00:00 Beijing time.
    #[arg(long, default_value_t = 1_761_926_400)]
    start: i64,
    /// The instant the history reaches (unix seconds); articles and snapshots after it
    /// do not exist yet. Default: a year after the start.
    #[arg(long, default_value_t = 1_793_462_400)]
    until: i64,
    /// Everything derives from it.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Snapshots per write transaction.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Write each transaction's snapshots as the crawler does: through
    /// `Store::write_group`, one member per snapshot.
    #[arg(long)]
    group_commit: bool,
}

/// What a run wrote.
#[derive(Debug, serde::Serialize)]
pub struct HistorySummary {
    accounts: u64,
    articles: usize,
    snapshots: usize,
    batch: usize,
    /// Whether snapshots went through `Store::write_group` (one member each).
    group_commit: bool,
    article_seconds: f64,
    snapshot_seconds: f64,
    /// Snapshot rows per second through `Tx::insert_snapshot`, commits included.
    snapshot_rows_per_second: f64,
}

/// One generated article.
struct Article {
    key: ArticleKey,
    published_at: i64,
    title: String,
    /// Reads at 30 days.
    reads: f64,
}

/// Writes everything of the history that happened before `--until` and is not stored
/// yet.
pub fn write(args: &HistoryArgs) -> Result<HistorySummary> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if args.until <= args.start {
        bail!("--until must be after --start");
    }
    let mut store =
        Store::open(&args.db, &StoreOptions::default()).with_context(|| format!("opening {}", args.db.display()))?;
    let rungs: Vec<i64> = CrawlConfig::default().snapshot_ages.iter().map(|age| age.as_secs() as i64).collect();
    let first_day = args.start;
    // Everything before the latest stored publication or observation was written by an
    // earlier run (each run writes all of its window).
    let stored_until: i64 = store
        .connection()
        .query_row(
            "SELECT max(coalesce((SELECT max(observed_at) FROM metric_snapshots), 0),
                        coalesce((SELECT max(published_at) FROM articles), 0)) + 1",
            [],
            |row| row.get::<_, i64>(0),
        )
        .context("reading how far the history goes")?
        .max(first_day);
    let add_accounts = |store: &mut Store| {
        store.write(|tx| {
            for account in 0..args.accounts {
                let mut new = NewAccount::with_biz(biz_of(account));
                new.nickname = Some(format!("合成号{account:03}"));
                new.groups = vec![format!("group-{}", account % 4)];
                tx.add_account(&new, first_day)?;
            }
            Ok(())
        })
    };
    add_accounts(&mut store).context("adding the accounts")?;

    // Articles published in [stored_until, until), by account and day.
    let started = Instant::now();
    let articles: Vec<Article> = (0..args.accounts)
        .flat_map(|account| {
            let first = (stored_until - first_day).div_euclid(DAY);
            let last = (args.until - 1 - first_day).div_euclid(DAY);
            (first..=last).flat_map(move |day| articles_of(args.seed, account, first_day + day * DAY))
        })
        .collect();
    // In publication order, as a crawler finds them: ids then follow time, and the
    // snapshots due at any moment belong to a few runs of neighbouring ids.
    let mut new_articles: Vec<&Article> =
        articles.iter().filter(|a| a.published_at >= stored_until && a.published_at < args.until).collect();
    new_articles.sort_by_key(|a| (a.published_at, a.key.mid, a.key.idx));
    for chunk in new_articles.chunks(500) {
        store
            .write(|tx| {
                for article in chunk {
                    tx.upsert_article(&record_of(article), article.published_at)?;
                }
                Ok(())
            })
            .context("storing articles")?;
    }
    // As a crawl does at its end: the articles enter the full-text index.
    store.index_all_for_search().context("adding the articles to the full-text index")?;
    let article_seconds = started.elapsed().as_secs_f64();

    // Snapshots observed in [stored_until, until), in observation order. Articles
    // published before `stored_until` are regenerated (not read back) for their later
    // rungs.
    let mut older: Vec<Article> = Vec::new();
    if stored_until > first_day {
        let window_start = (stored_until - rungs.last().copied().unwrap_or(0) - 2 * DAY).max(first_day);
        for account in 0..args.accounts {
            let mut day = (window_start - first_day).div_euclid(DAY) * DAY + first_day;
            while day < stored_until {
                older.extend(articles_of(args.seed, account, day).filter(|a| a.published_at < stored_until));
                day += DAY;
            }
        }
    }
    let mut due: Vec<(i64, &Article, i64)> = Vec::new();
    for article in new_articles.iter().copied().chain(older.iter()) {
        let mut rng = rng_for(args.seed ^ 0x5eed, article.key.mid ^ u64::from(article.key.idx));
        for &rung in &rungs {
            let missed = rng.random_bool(0.02);
            let delay =
                if rng.random_bool(0.03) { rng.random_range(rung / 2..rung + 1) } else { rng.random_range(0..600) };
            let observed_at = article.published_at + rung + delay;
            if !missed && observed_at >= stored_until && observed_at < args.until {
                due.push((observed_at, article, rung));
            }
        }
    }
    due.sort_by_key(|(observed_at, article, _)| (*observed_at, article.key.mid, article.key.idx));
    // Rows ready to insert before the clock starts: the figure is the store's.
    let ids = article_ids(&store)?;
    let rows: Vec<(i64, Snapshot)> = due
        .iter()
        .filter_map(|(observed_at, article, rung)| {
            let id = ids.get(&(article.key.biz.as_str().to_string(), article.key.mid, article.key.idx))?;
            Some((*id, snapshot_of(article, *rung, *observed_at)))
        })
        .collect();
    // Group members are made before the clock starts too, as the rows are.
    let failed = Arc::new(Mutex::new(None));
    let mut groups: Vec<Vec<Box<dyn GroupWrite>>> = if args.group_commit {
        rows.chunks(args.batch)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|(id, snapshot)| -> Box<dyn GroupWrite> {
                        Box::new(SnapshotWrite { article_id: *id, snapshot: snapshot.clone(), failed: failed.clone() })
                    })
                    .collect()
            })
            .collect()
    } else {
        Vec::new()
    };
    let started = Instant::now();
    if args.group_commit {
        for group in groups.drain(..) {
            store.write_group(group);
        }
    } else {
        for chunk in rows.chunks(args.batch) {
            store
                .write(|tx| {
                    for (id, snapshot) in chunk {
                        tx.insert_snapshot(*id, snapshot)?;
                    }
                    Ok(())
                })
                .context("storing snapshots")?;
        }
    }
    let snapshot_seconds = started.elapsed().as_secs_f64();
    if let Some(error) = failed.lock().map_err(|_| anyhow::anyhow!("a group member panicked"))?.take() {
        bail!("storing snapshots: {error}");
    }
    Ok(HistorySummary {
        accounts: args.accounts,
        articles: new_articles.len(),
        snapshots: rows.len(),
        batch: args.batch,
        group_commit: args.group_commit,
        article_seconds,
        snapshot_seconds,
        snapshot_rows_per_second: rows.len() as f64 / snapshot_seconds.max(1e-6),
    })
}

/// One snapshot written as a count item of the crawler writes it: a member of a group
/// commit. The first error (its own or the group's) lands in `failed`.
struct SnapshotWrite {
    article_id: i64,
    snapshot: Snapshot,
    failed: Arc<Mutex<Option<String>>>,
}

impl SnapshotWrite {
    fn fail(&self, error: &StoreError) {
        if let Ok(mut failed) = self.failed.lock() {
            failed.get_or_insert_with(|| error.to_string());
        }
    }
}

impl GroupWrite for SnapshotWrite {
    fn run(&mut self, tx: &Tx<'_>) -> bool {
        match tx.insert_snapshot(self.article_id, &self.snapshot) {
            Ok(_) => true,
            Err(error) => {
                self.fail(&error);
                false
            }
        }
    }

    fn finish(self: Box<Self>, committed: std::result::Result<(), &StoreError>) {
        if let Err(error) = committed {
            self.fail(error);
        }
    }
}

/// Every stored article's id by (numeric biz, mid, idx).
fn article_ids(store: &Store) -> Result<std::collections::HashMap<(String, u64, u32), i64>> {
    let mut statement =
        store.connection().prepare("SELECT id, biz, mid, idx FROM articles").context("reading article ids")?;
    let rows = statement
        .query_map([], |row| Ok(((row.get(1)?, row.get::<_, i64>(2)? as u64, row.get(3)?), row.get(0)?)))
        .context("reading article ids")?;
    rows.collect::<rusqlite::Result<_>>().context("reading article ids")
}

fn biz_of(account: u64) -> Biz {
    Biz::from_numeric_id(3_000_000_000 + account)
}

fn rng_for(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ stream)
}

/// The account's size: its typical headline reads (log-normal across accounts, from a
/// few hundred to 10万+).
fn account_scale(seed: u64, account: u64) -> f64 {
    let mut rng = rng_for(seed, account);
    LogNormal::new(8.0, 1.2).map(|d| d.sample(&mut rng)).unwrap_or(3000.0)
}

/// The articles an account published on the day starting at `day_start`.
fn articles_of(seed: u64, account: u64, day_start: i64) -> impl Iterator<Item = Article> {
    let mut rng = rng_for(seed, account << 20 ^ (day_start / DAY) as u64);
    let scale = account_scale(seed, account);
    // Most accounts push once on a little over half the days; a few twice.
    let pushes = match rng.random_range(0..100) {
        0..40 => 0,
        40..92 => 1,
        _ => 2,
    };
    let mut out = Vec::new();
    for push in 0..pushes {
        let published_at = day_start + rng.random_range(7 * 3600..22 * 3600);
        let mid = 2_650_000_000 + account * 1_000_000 + (day_start / DAY) as u64 % 100_000 * 4 + push;
        let size = rng.random_range(1..=4u32);
        for idx in 1..=size {
            let share = if idx == 1 { 1.0 } else { 0.35 / f64::from(idx) };
            let reads = LogNormal::new(0.0, 0.6).map(|d| d.sample(&mut rng)).unwrap_or(1.0) * scale * share;
            out.push(Article {
                key: ArticleKey { biz: biz_of(account), mid, idx },
                published_at,
                title: format!("合成号{account:03} 第{}期 第{idx}篇", (day_start / DAY) % 100_000),
                reads,
            });
        }
    }
    out.into_iter()
}

fn record_of(article: &Article) -> ArticleRecord {
    let key = &article.key;
    ArticleRecord {
        url: format!("https://mp.weixin.qq.com/s?__biz={}&mid={}&idx={}&sn=0000", key.biz.as_str(), key.mid, key.idx),
        key: Some(key.clone()),
        sn: Some("0000".into()),
        title: Some(article.title.clone()),
        digest: Some("合成数据".into()),
        published_at: Some(article.published_at),
        kind: Some(ArticleKind::Article),
        content_text: Some(format!("{}。正文由 mpwatch-bench 生成。", article.title).repeat(8)),
        status: ArticleStatus::Ok,
        ..ArticleRecord::default()
    }
}

/// The counts at `rung` seconds: reads approach their 30-day value as real articles'
/// do (most in the first day).
fn snapshot_of(article: &Article, rung: i64, observed_at: i64) -> Snapshot {
    let age_days = (observed_at - article.published_at) as f64 / DAY as f64;
    let grown = (1.0 - (-age_days * 1.6).exp()).clamp(0.05, 1.0);
    let reads = (article.reads * grown).round() as i64;
    let capped = reads > 100_000;
    Snapshot {
        observed_at,
        rung_seconds: Some(rung),
        reads: Some(reads.min(100_001)),
        reads_capped: capped,
        likes: Some(reads / 90),
        wows: Some(reads / 210),
        shares: Some(reads / 40),
        comments: Some(reads / 700),
        source: "getappmsgext".into(),
    }
}
