//! Indices over a database built through the store's API: 60 days of several accounts
//! with snapshots at several ages, checked against a straightforward computation
//! written here; incremental recompute equals full recompute; the properties rankers
//! rely on.

use mpwatch_core::{ArticleKey, ArticleKind, ArticleStatus, Biz, Copyright};
use mpwatch_index::compute::{ArticleData, Observation, Period, PeriodKind, Rules, aggregate};
use mpwatch_index::formulas::Formula;
use mpwatch_index::{Scope, compute_period, update};
use mpwatch_store::accounts::NewAccount;
use mpwatch_store::articles::{ArticleRecord, Snapshot};
use mpwatch_store::{Store, StoreOptions};
use proptest::prelude::*;

/// 2025-09-01 00:00 in Beijing.
const START: i64 = 1_756_656_000;
const DAY: i64 = 86_400;
const NOW: i64 = START + 75 * DAY;

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn biz(account: u64) -> Biz {
    use base64::Engine as _;
    Biz::parse(&base64::engine::general_purpose::STANDARD.encode((3_000_000_000u64 + account).to_string())).unwrap()
}

/// Builds accounts and 60 days of articles; returns the store.
fn build(path: &std::path::Path, accounts: u64, days: i64) -> Store {
    build_until(path, accounts, days, NOW)
}

/// Builds accounts and `days` days of articles with the snapshots observed before
/// `now` (adding to what is there: building again later adds the later snapshots).
fn build_until(path: &std::path::Path, accounts: u64, days: i64, now: i64) -> Store {
    let mut store = Store::open(path, &StoreOptions::default()).unwrap();
    store
        .write(|tx| {
            for account in 0..accounts {
                let new =
                    NewAccount { nickname: Some(format!("账号{account}")), ..NewAccount::with_biz(biz(account)) };
                tx.add_account(&new, START)?;
                for day in 0..days {
                    let h = mix(account * 1000 + day as u64);
                    // Account 2 publishes every tenth day only: periods where it is
                    // neither published nor observed.
                    if h.is_multiple_of(5) || (account == 2 && day % 10 != 0) {
                        continue;
                    }
                    let articles = 1 + h % 4;
                    // Pushes between 08:00 and 23:59 Beijing time: the late ones test day boundaries.
                    let published = START + day * DAY + 8 * 3600 + (h % (16 * 3600 - 60)) as i64;
                    for idx in 1..=articles {
                        let key = ArticleKey { biz: biz(account), mid: 2_247_000_000 + day as u64, idx: idx as u32 };
                        let record = ArticleRecord {
                            url: format!("https://mp.weixin.qq.com/s?__biz={}&mid={}&idx={idx}", key.biz, key.mid),
                            key: Some(key),
                            title: Some(format!("{account}-{day}-{idx}")),
                            published_at: Some(published),
                            kind: Some(ArticleKind::Article),
                            copyright: Some(Copyright::None),
                            status: ArticleStatus::Ok,
                            ..ArticleRecord::default()
                        };
                        let (id, _) = tx.upsert_article(&record, published)?;
                        let scale = (200 + mix(h ^ idx) % (20_000 * (account + 1))) as f64 / idx as f64;
                        // Snapshots at 1 h, ~1 day, ~7 days (some late) and 30 days.
                        let late = mix(h ^ (idx << 8)).is_multiple_of(7);
                        for (age, fraction) in [
                            (3600, 0.3),
                            (DAY + 1800, 0.8),
                            (if late { 10 * DAY } else { 7 * DAY + 600 }, 0.95),
                            (30 * DAY, 1.0),
                        ] {
                            let observed = published + age;
                            if observed > now {
                                continue;
                            }
                            let reads = (scale * fraction) as i64;
                            let reads = if account == 0 && idx == 1 && day % 9 == 0 { 100_001 } else { reads };
                            tx.insert_snapshot(
                                id,
                                &Snapshot {
                                    observed_at: observed,
                                    rung_seconds: Some(age),
                                    reads: Some(reads),
                                    reads_capped: reads == 100_001,
                                    likes: Some(reads / 40),
                                    wows: Some(reads / 90),
                                    shares: Some(reads / 25),
                                    comments: Some(reads / 300),
                                    source: "test".into(),
                                },
                            )?;
                        }
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    store
}

/// The straightforward way: Beijing is UTC+8 with no daylight saving.
fn local_day(t: i64) -> i64 {
    (t + 8 * 3600).div_euclid(DAY)
}

struct Row {
    n: f64,
    r: f64,
    rt: f64,
    rmax: f64,
    z: f64,
    zt: f64,
    zmax: f64,
    l: f64,
    lt: f64,
    lmax: f64,
    re: f64,
    ret: f64,
    remax: f64,
}

/// Sums an account's articles published in `[first_day, first_day + days)` (local day
/// numbers), each at the first snapshot at or after `target` seconds.
fn by_hand(store: &Store, account: i64, first_day: i64, days: i64, target: i64) -> Row {
    let mut row = Row {
        n: 0.0,
        r: 0.0,
        rt: 0.0,
        rmax: 0.0,
        z: 0.0,
        zt: 0.0,
        zmax: 0.0,
        l: 0.0,
        lt: 0.0,
        lmax: 0.0,
        re: 0.0,
        ret: 0.0,
        remax: 0.0,
    };
    let mut statement =
        store.connection().prepare("SELECT id, idx, published_at FROM articles WHERE account_id = ?1").unwrap();
    let articles: Vec<(i64, i64, i64)> = statement
        .query_map([account], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (id, idx, published) in articles {
        let day = local_day(published);
        if day < first_day || day >= first_day + days {
            continue;
        }
        let snapshots = store.snapshots_of(id).unwrap();
        let chosen =
            snapshots.iter().filter(|s| s.age_seconds.unwrap() >= target).min_by_key(|s| s.age_seconds.unwrap());
        let chosen = chosen.or_else(|| snapshots.iter().max_by_key(|s| s.age_seconds.unwrap()));
        let (reads, wows, likes, shares) = chosen.map_or((0.0, 0.0, 0.0, 0.0), |s| {
            (
                s.snapshot.reads.unwrap() as f64,
                s.snapshot.wows.unwrap() as f64,
                s.snapshot.likes.unwrap() as f64,
                s.snapshot.shares.unwrap() as f64,
            )
        });
        row.n += 1.0;
        row.r += reads;
        row.z += wows;
        row.l += likes;
        row.re += shares;
        row.rmax = row.rmax.max(reads);
        row.zmax = row.zmax.max(wows);
        row.lmax = row.lmax.max(likes);
        row.remax = row.remax.max(shares);
        if idx == 1 {
            row.rt += reads;
            row.zt += wows;
            row.lt += likes;
            row.ret += shares;
        }
    }
    row
}

/// WCI V14.2 written out once more, term by term.
fn wci_v142_by_hand(row: &Row, d: f64) -> f64 {
    let f = |r: f64, z: f64, l: f64, e: f64| {
        0.70 * (r + 1.0).ln()
            + 0.09 * (10.0 * z + 1.0).ln()
            + 0.06 * (10.0 * l + 1.0).ln()
            + 0.15 * (10.0 * e + 1.0).ln()
    };
    let n = if row.n > 0.0 { row.n } else { 1.0 };
    let inner = 0.6 * f(row.r / d, row.z / d, row.l / d, row.re / d)
        + 0.2 * f(row.r / n, row.z / n, row.l / n, row.re / n)
        + 0.1 * f(row.rt / d, row.zt / d, row.lt / d, row.ret / d)
        + 0.1 * f(row.rmax, row.zmax, row.lmax, row.remax);
    inner * inner * 12.0
}

fn stored(store: &Store, account: i64, kind: &str, start: i64, index: &str) -> (f64, Option<i64>) {
    store
        .connection()
        .query_row(
            "SELECT value, rank FROM index_values WHERE account_id = ?1 AND period_kind = ?2 AND period_start = ?3 AND index_name = ?4",
            (account, kind, start, index),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[test]
fn sixty_days_of_four_accounts_match_a_computation_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = build(&dir.path().join("m.db"), 4, 60);
    let rules = Rules::shanghai();
    update(&mut store, &rules, Scope::Full, NOW).unwrap();
    let start_day = local_day(START);
    for (kind, offsets, days, d, target) in [
        ("day", vec![0, 7, 13, 29, 44, 59], 1, 1.0, DAY),
        ("week", vec![6, 13, 27], 7, 7.0, DAY),
        ("month", vec![0, 30], 30, 30.0, 7 * DAY),
    ] {
        for offset in offsets {
            // 2025-09-01 is a Monday: weeks start on the Sunday before each offset.
            let first = match kind {
                "week" => start_day + offset - ((offset + 1) % 7),
                "month" if offset == 30 => start_day + 30, // October 1st
                _ => start_day + offset,
            };
            let period_start = first * DAY - 8 * 3600;
            let month_days = if kind == "month" && offset == 30 { 31 } else { days };
            let mut values = Vec::new();
            for account in 1..=4 {
                let row = by_hand(&store, account, first, month_days, target);
                let expected = wci_v142_by_hand(&row, d);
                let (value, _) = stored(&store, account, kind, period_start, "wci-v14.2");
                assert!((value - expected).abs() < 1e-9, "{kind} {first} account {account}: {value} vs {expected}");
                let (n, reads): (i64, f64) = store
                    .connection()
                    .query_row(
                        "SELECT n, reads FROM index_periods WHERE account_id = ?1 AND period_kind = ?2 AND period_start = ?3",
                        (account, kind, period_start),
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .unwrap();
                assert_eq!((n as f64, reads), (row.n, row.r), "{kind} {first} account {account}");
                values.push((account, expected));
            }
            // Ranks: 1 + the number of accounts strictly ahead; none for an account
            // that published nothing.
            for (account, value) in &values {
                let row = by_hand(&store, *account, first, month_days, target);
                let expected_rank = (row.n > 0.0).then(|| 1 + values.iter().filter(|(_, v)| v > value).count() as i64);
                assert_eq!(stored(&store, *account, kind, period_start, "wci-v14.2").1, expected_rank);
            }
        }
    }
    // 10万+ was counted as 100001 and flagged rows exist.
    let capped: f64 =
        store.connection().query_row("SELECT max(reads_max) FROM index_periods", [], |r| r.get(0)).unwrap();
    assert_eq!(capped, 100_001.0);
    let late: i64 = store
        .connection()
        .query_row("SELECT sum(late_articles) FROM index_periods WHERE period_kind = 'month'", [], |r| r.get(0))
        .unwrap();
    assert!(late > 0);
}

#[test]
fn recomputing_is_idempotent_and_rank_changes_follow_the_previous_period() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = build(&dir.path().join("m.db"), 3, 20);
    let rules = Rules::shanghai();
    update(&mut store, &rules, Scope::Full, NOW).unwrap();
    let before = dump(&store);
    update(&mut store, &rules, Scope::Full, NOW).unwrap();
    assert_eq!(dump(&store), before);
    let changes: i64 = store
        .connection()
        .query_row(
            "SELECT count(*) FROM index_values v JOIN index_values p ON p.account_id = v.account_id AND p.index_name = v.index_name
             AND p.period_kind = 'day' AND p.period_start = v.period_start - 86400
             WHERE v.period_kind = 'day' AND v.rank_change IS NOT p.rank - v.rank",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(changes, 0);
}

/// Indices are written with foreign-key checks off (they cost a third of a full
/// recompute); what they wrote must still satisfy every key, and the connection must
/// check keys again afterwards.
#[test]
fn index_rows_satisfy_their_foreign_keys_and_checks_come_back_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let rules = Rules::shanghai();
    let mut store = build_until(&path, 3, 20, START + 20 * DAY);
    update(&mut store, &rules, Scope::Full, NOW).unwrap();
    drop(store);
    // Later snapshots change the stored periods: each is rewritten, its old values
    // deleted explicitly (a leftover value row would collide with its new one).
    let mut store = build(&path, 3, 20);
    let summary = update(&mut store, &rules, Scope::Full, NOW).unwrap();
    assert!(summary.changed > 0, "{summary:?}");
    let violations: i64 =
        store.connection().query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
    assert_eq!(violations, 0);
    let on: i64 = store.connection().query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
    assert_eq!(on, 1);
    // Every period row has its five values.
    let values: i64 = store.connection().query_row("SELECT count(*) FROM index_values", [], |r| r.get(0)).unwrap();
    let periods: i64 = store.connection().query_row("SELECT count(*) FROM index_periods", [], |r| r.get(0)).unwrap();
    assert_eq!(values, periods * 5);
}

/// The index tables without their computation times.
fn dump(store: &Store) -> Vec<String> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT account_id, period_kind, period_start, n, reads, reads_max, wows, likes, shares, late_articles, provisional,
                reads_gained_per_day, missing_articles FROM index_periods ORDER BY 1, 2, 3",
        "SELECT account_id, period_kind, period_start, index_name, value, rank, rank_change FROM index_values ORDER BY 1, 2, 3, 4",
    ] {
        let mut statement = store.connection().prepare(sql).unwrap();
        let columns = statement.column_count();
        let mut query = statement.query([]).unwrap();
        while let Some(row) = query.next().unwrap() {
            let cells: Vec<String> = (0..columns).map(|i| format!("{:?}", row.get_ref(i).unwrap())).collect();
            rows.push(cells.join("|"));
        }
    }
    rows
}

/// A full recompute of four months or more is read in parts on a second connection
/// while the first writes; it gives the same tables as updates of month-long ranges,
/// each read and written in turn.
#[test]
fn a_full_recompute_read_in_parts_equals_short_ranges_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let rules = Rules::shanghai();
    let days = 220;
    let end = START + (days + 40) * DAY;
    let mut store = build_until(&dir.path().join("p.db"), 3, days, end);
    let mut from = START - 7 * DAY;
    while from < end {
        update(&mut store, &rules, Scope::Range(from, from + 30 * DAY), end).unwrap();
        from += 30 * DAY;
    }
    let in_turn = dump(&store);
    store.connection().execute_batch("DELETE FROM index_values; DELETE FROM index_periods;").unwrap();
    // 260 days: five parts of 61 days, so the full recompute reads on a second thread.
    let summary = update(&mut store, &rules, Scope::Full, end).unwrap();
    assert!(summary.periods > 200, "{summary:?}");
    assert_eq!(in_turn.len(), dump(&store).len());
    assert_eq!(in_turn, dump(&store));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Adding data in batches and updating incrementally after each gives the same
    /// tables as one full recompute.
    #[test]
    fn incremental_equals_full(days in 3i64..75, accounts in 1u64..4, cut in 1i64..74) {
        let dir = tempfile::tempdir().unwrap();
        let rules = Rules::shanghai();
        let path = dir.path().join("m.db");
        // The history as it stood at the end of day `cut`, incremental update, then the
        // rest (new articles, and later snapshots of the earlier ones), incremental again.
        let cut = cut.min(days - 1);
        let mut store = build_until(&path, accounts, cut, START + cut * DAY);
        update(&mut store, &rules, Scope::Incremental, NOW).unwrap();
        drop(store);
        let mut store = build(&path, accounts, days);
        update(&mut store, &rules, Scope::Incremental, NOW).unwrap();
        let incremental = dump(&store);
        update(&mut store, &rules, Scope::Full, NOW).unwrap();
        prop_assert_eq!(incremental, dump(&store));
    }

    /// Adding reads to any article never lowers an account's WCI or NRI, and the order
    /// of the articles never matters.
    #[test]
    fn more_reads_never_lower_an_index_and_order_does_not_matter(
        reads in proptest::collection::vec((0i64..200_000, 1u32..4, 0i64..86_400 * 3), 1..12),
        bump_index in 0usize..12, bump in 1i64..50_000,
    ) {
        let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        let rules = Rules::shanghai();
        let period = Period::containing(PeriodKind::Week, "2025-11-12".parse().unwrap(), &tz);
        let articles: Vec<ArticleData> = reads.iter().enumerate().map(|(i, (r, idx, offset))| {
            let published = period.start + offset;
            ArticleData {
                id: i as i64, account_id: 1, mid: i as u64 / 2, idx: *idx, published_at: published,
                snapshots: vec![Observation { age: 2 * DAY, observed_at: published + 2 * DAY, reads: (*r).min(100_001), likes: r / 30, wows: r / 70, shares: r / 20, comments: r / 200 }],
            }
        }).collect();
        let refs: Vec<&ArticleData> = articles.iter().collect();
        let base = aggregate(1, &period, &refs, &refs, &rules);
        let mut reversed = refs.clone();
        reversed.reverse();
        prop_assert_eq!(&aggregate(1, &period, &reversed, &reversed, &rules).inputs, &base.inputs);

        let mut bumped = articles.clone();
        let target = bump_index % bumped.len();
        let snapshot = &mut bumped[target].snapshots[0];
        snapshot.reads = (snapshot.reads + bump).min(100_001);
        let refs: Vec<&ArticleData> = bumped.iter().collect();
        let more = aggregate(1, &period, &refs, &refs, &rules);
        for formula in Formula::ALL {
            prop_assert!(formula.compute(&more.inputs) >= formula.compute(&base.inputs) - 1e-12, "{} went down", formula);
        }
    }
}

#[test]
fn an_article_at_23_30_beijing_time_belongs_to_that_day() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("m.db"), &StoreOptions::default()).unwrap();
    // 2025-11-01 23:30 Beijing = 15:30 UTC.
    let published = 1_762_011_000;
    store
        .write(|tx| {
            tx.add_account(&NewAccount::with_biz(biz(1)), published)?;
            let key = ArticleKey { biz: biz(1), mid: 7, idx: 1 };
            let record = ArticleRecord {
                url: "https://mp.weixin.qq.com/s?x".into(),
                key: Some(key),
                published_at: Some(published),
                status: ArticleStatus::Ok,
                ..ArticleRecord::default()
            };
            let (id, _) = tx.upsert_article(&record, published)?;
            tx.insert_snapshot(
                id,
                &Snapshot {
                    observed_at: published + DAY,
                    rung_seconds: Some(DAY),
                    reads: Some(500),
                    reads_capped: false,
                    likes: Some(5),
                    wows: Some(2),
                    shares: Some(1),
                    comments: Some(0),
                    source: "test".into(),
                },
            )?;
            Ok(())
        })
        .unwrap();
    update(&mut store, &Rules::shanghai(), Scope::Full, published + 2 * DAY).unwrap();
    let first_day: String = store
        .connection()
        .query_row("SELECT first_day FROM index_periods WHERE period_kind = 'day' AND n = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(first_day, "2025-11-01");
    // In UTC the same instant is also the 1st; an hour later it is the 2nd in Beijing only.
    let utc = Rules { tz: jiff::tz::TimeZone::UTC, ..Rules::shanghai() };
    assert_eq!(Period::at(PeriodKind::Day, published + 3600, &utc.tz).first_day.to_string(), "2025-11-01");
    assert_eq!(
        Period::at(PeriodKind::Day, published + 3600, &Rules::shanghai().tz).first_day.to_string(),
        "2025-11-02"
    );
}

/// A period computed from its own window (everything older is outside it) equals the
/// same period of a full recompute: the older articles' reads at the window's start and
/// the accounts observed before it are read right.
#[test]
fn a_period_read_from_its_own_window_equals_the_full_computation() {
    let dir = tempfile::tempdir().unwrap();
    let rules = Rules::shanghai();
    let mut store = build(&dir.path().join("m.db"), 3, 60);
    update(&mut store, &rules, Scope::Full, NOW).unwrap();
    let mut compared = 0;
    for day in [3, 12, 31, 38, 47, 59, 66] {
        for kind in [PeriodKind::Day, PeriodKind::Week, PeriodKind::Month] {
            let period = Period::at(kind, START + day * DAY + 12 * 3600, &rules.tz);
            for row in compute_period(&store, &period, &rules).unwrap() {
                let stored: Option<(Option<f64>, f64, f64)> = store
                    .connection()
                    .query_row(
                        "SELECT reads_gained_per_day, reads, n FROM index_periods
                         WHERE account_id = ?1 AND period_kind = ?2 AND period_start = ?3",
                        rusqlite::params![row.account_id, kind.as_str(), period.start],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .ok();
                let Some(stored) = stored else { continue };
                assert_eq!(
                    stored,
                    (row.reads_gained_per_day, row.inputs.R, row.inputs.n),
                    "account {} {kind:?} {}",
                    row.account_id,
                    period.first_day
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 40, "only {compared} rows compared");
}

/// Rank changes compare a period with the calendar period before it: after a day
/// without any article (no period stored), the next day has no rank change, whichever
/// scope computed its neighbours last.
#[test]
fn rank_changes_never_jump_over_a_day_without_articles() {
    let dir = tempfile::tempdir().unwrap();
    let rules = Rules::shanghai();
    let mut store = build(&dir.path().join("m.db"), 3, 20);
    let gap = Period::at(PeriodKind::Day, START + 5 * DAY + 12 * 3600, &rules.tz);
    store
        .connection()
        .execute("DELETE FROM articles WHERE published_at >= ?1 AND published_at < ?2", [gap.start, gap.end])
        .unwrap();
    update(&mut store, &rules, Scope::Full, NOW).unwrap();
    let full = dump(&store);
    let before_gap = Period::at(PeriodKind::Day, gap.start - 1, &rules.tz);
    // Lose the day before the gap, so that recomputing it writes it again.
    store
        .connection()
        .execute("DELETE FROM index_periods WHERE period_kind = 'day' AND period_start = ?1", [before_gap.start])
        .unwrap();
    update(&mut store, &rules, Scope::Range(before_gap.start, before_gap.end), NOW).unwrap();
    assert!(dump(&store) == full, "recomputing the day before the gap changed the tables");
    let after_gap: i64 = store
        .connection()
        .query_row(
            "SELECT count(*) FROM index_values WHERE period_kind = 'day' AND period_start = ?1 AND rank_change IS NOT NULL",
            [gap.end],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(after_gap, 0, "the day after the gap compared itself with the day before it");
}

/// An article deleted after its first count never gets the +24 h value: its day stays
/// provisional while the ladder could still count it, then becomes final with the
/// article counted as missing, by an incremental update with nothing new to read.
#[test]
fn an_article_never_counted_at_its_age_is_missing_once_the_ladder_ended() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("m.db"), &StoreOptions::default()).unwrap();
    let published = START + 9 * 3600;
    store
        .write(|tx| {
            tx.add_account(&NewAccount { nickname: Some("账号".into()), ..NewAccount::with_biz(biz(0)) }, START)?;
            let key = ArticleKey { biz: biz(0), mid: 2_247_000_001, idx: 1 };
            let record = ArticleRecord {
                url: format!("https://mp.weixin.qq.com/s?__biz={}&mid={}&idx=1", key.biz, key.mid),
                key: Some(key),
                published_at: Some(published),
                status: ArticleStatus::Deleted,
                ..ArticleRecord::default()
            };
            let (id, _) = tx.upsert_article(&record, published)?;
            tx.insert_snapshot(
                id,
                &Snapshot {
                    observed_at: published + 3600,
                    rung_seconds: Some(3600),
                    reads: Some(500),
                    reads_capped: false,
                    likes: Some(5),
                    wows: Some(2),
                    shares: Some(1),
                    comments: Some(0),
                    source: "test".into(),
                },
            )?;
            Ok(())
        })
        .unwrap();
    let rules = Rules::shanghai();
    let day = |store: &Store| -> (i64, i64, i64) {
        store
            .connection()
            .query_row(
                "SELECT provisional, missing_articles, CAST(reads AS INTEGER) FROM index_periods
                 WHERE period_kind = 'day' AND period_start = ?1",
                [START],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap()
    };
    update(&mut store, &rules, Scope::Incremental, published + 2 * DAY).unwrap();
    assert_eq!(day(&store), (1, 0, 500), "the ladder may still count it");
    // Nothing new arrives; the ladder's last rung (30 days) passes.
    let summary = update(&mut store, &rules, Scope::Incremental, published + 31 * DAY).unwrap();
    assert!(summary.periods > 0, "settled provisional periods are recomputed");
    assert_eq!(day(&store), (0, 1, 500), "final, the article counted as missing");
    let again = update(&mut store, &rules, Scope::Incremental, published + 32 * DAY).unwrap();
    assert_eq!(again.periods, 0, "and then nothing is left to do");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    /// Whatever sequence of crawls (days of data arriving) and incremental updates ran,
    /// the index tables equal those of `index --full` from empty tables on the same data.
    #[test]
    fn incremental_updates_in_any_order_equal_a_full_recompute(
        steps in proptest::collection::vec((1i64..=9, any::<bool>()), 1..8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let rules = Rules::shanghai();
        let path = dir.path().join("incremental.db");
        let mut days = 0;
        let mut store = build_until(&path, 3, 0, START);
        for (advance, index_now) in &steps {
            days += advance;
            drop(store);
            store = build_until(&path, 3, days, START + days * DAY);
            if *index_now {
                update(&mut store, &rules, Scope::Incremental, START + days * DAY).unwrap();
            }
        }
        // Some time later (rungs settle), the last incremental update.
        let now = START + (days + 3) * DAY;
        update(&mut store, &rules, Scope::Incremental, now).unwrap();
        let mut full = build_until(&dir.path().join("full.db"), 3, days, START + days * DAY);
        update(&mut full, &rules, Scope::Full, now).unwrap();
        prop_assert_eq!(dump(&store), dump(&full));
    }
}
