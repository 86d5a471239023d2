//! `mpwatch demo`: the main job end to end on the built-in simulator. The simulator
//! runs in-process on an accelerated clock, and the service's own code path (`mpwatch
//! run`: schedules, discovery, the snapshot ladder, daily index updates) crawls it into
//! a fresh database. On the way the demo lets a credential expire and renews it (as a
//! user would: new secrets, then a reload), and has WeChat answer with its
//! verification page for a while (the crawler cools down). Then it prints the period's
//! ranking, draws a chart, and says what to try next.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use mpwatch_core::config::{CatchUp, Config, JobKind, RateLimit, ScheduleEntry};
use mpwatch_core::secrets::Secrets;
use mpwatch_core::time::{Clock as _, ClockMode, ControlledClock};
use mpwatch_index::compute::{Period, PeriodKind, Rules};
use mpwatch_index::formulas::Formula;
use mpwatch_service::notify::Notifier;
use mpwatch_service::{Control, ServiceSetup};
use mpwatch_sim::scenario::Limit;
use mpwatch_sim::{SimConfig, SimCredential, SimHandle};
use mpwatch_store::{Store, StoreOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::cli::{DemoArgs, GlobalArgs, ReportFormat};

const DAY: i64 = 86_400;

/// Simulated seconds per real second: a simulated day in 1.33 s, so 30 days take about
/// 40 s, and the crawler (limits lifted, loopback) keeps up on two cores.
const TIME_SCALE: f64 = 64_800.0;

/// The time zone the demo's days, schedules and rankings use (the accounts' own).
const TIMEZONE: &str = "Asia/Shanghai";

/// How often the progress line and the episodes are looked at (real time).
const TICK: Duration = Duration::from_millis(100);

/// The longest wait for the service to stop once the days are over.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// What the demo keeps next to its database (`FILE.demo.json`), so `--db FILE` can
/// continue a demo database and refuses any other.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DemoState {
    /// The simulator's seed.
    seed: u64,
    /// Synthetic accounts besides the four publishers.
    accounts: usize,
    /// The world's first day (unix seconds).
    world_start: i64,
    /// The simulated instant the last run reached.
    reached: i64,
    /// The feed host of the last run (feed sources name it; a new run has a new port).
    feed_base: String,
    /// Credential sets issued so far (names continue across runs).
    credentials_issued: u32,
}

/// Runs the demo.
pub fn run(global: &GlobalArgs, args: &DemoArgs) -> Result<()> {
    if args.days == 0 || args.days > 366 {
        bail!("--days must be between 1 and 366");
    }
    // MPWATCH_DB names the user's real database: the demo takes only an explicit --db.
    let given_on_command_line =
        std::env::args_os().any(|arg| arg == "--db" || arg.to_string_lossy().starts_with("--db="));
    let db = global.db.as_deref().filter(|_| given_on_command_line);
    if global.db.is_some() && db.is_none() {
        println!("(MPWATCH_DB is not used by the demo: give --db FILE to choose its database)");
    }
    let (db_path, fresh_dir) = database_path(db)?;
    let state_path = sidecar(&db_path);
    let previous = read_state(&db_path, &state_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(simulate(args, &db_path, previous))?;
    write_state(&state_path, &outcome.state)?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    finish(&db_path, fresh_dir, &outcome)
}

/// The database named by `--db`, else `mpwatch.db` in a new directory under the
/// system's temporary directory (kept, so it can be queried afterwards).
fn database_path(given: Option<&Path>) -> Result<(PathBuf, bool)> {
    if let Some(path) = given {
        if path.to_str().is_some_and(mpwatch_core::config::is_postgres_url) {
            anyhow::bail!(
                "the demo writes a SQLite file of its own; give --db a file (copy it into PostgreSQL afterwards with `mpwatch db copy`)"
            );
        }
        return Ok((path.to_path_buf(), false));
    }
    let stamp = jiff::ZonedDateTime::now().strftime("%Y%m%d-%H%M%S").to_string();
    let dir = std::env::temp_dir().join(format!("mpwatch-demo-{stamp}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok((dir.join("mpwatch.db"), true))
}

fn sidecar(db_path: &Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(".demo.json");
    PathBuf::from(name)
}

/// The state of the demo `db_path` continues, `None` for a new database. A database the
/// demo did not make is refused: the demo must never write into real data.
fn read_state(db_path: &Path, state_path: &Path) -> Result<Option<DemoState>> {
    if !db_path.exists() {
        return Ok(None);
    }
    let text = match std::fs::read_to_string(state_path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} exists and was not made by `mpwatch demo` (no {}): the demo only continues its own databases; \
             give a new --db path",
            db_path.display(),
            state_path.display()
        ),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", state_path.display())),
    };
    let state = serde_json::from_str(&text).with_context(|| format!("{} is damaged", state_path.display()))?;
    Ok(Some(state))
}

fn write_state(state_path: &Path, state: &DemoState) -> Result<()> {
    let text = serde_json::to_string_pretty(state).context("encoding the demo state")?;
    std::fs::write(state_path, text + "\n").with_context(|| format!("cannot write {}", state_path.display()))
}

/// What the simulated days left behind.
struct Outcome {
    state: DemoState,
    start: i64,
    end: i64,
    articles: i64,
    snapshots: i64,
}

/// Midnight (in [`TIMEZONE`]) `days` days before today's: a first run ends about now,
/// so its dates read naturally in `mpwatch report` afterwards.
fn first_start(days: u32) -> Result<i64> {
    let tz = jiff::tz::TimeZone::get(TIMEZONE).context("the bundled time zone database lacks Asia/Shanghai")?;
    let today = jiff::Timestamp::now().to_zoned_datetime(tz.clone()).date();
    let midnight = today.to_zoned_datetime(tz).context("midnight of today")?.timestamp().as_second();
    Ok(midnight - i64::from(days) * DAY)
}

async fn simulate(args: &DemoArgs, db_path: &Path, previous: Option<DemoState>) -> Result<Outcome> {
    let continuing = previous.is_some();
    let mut state = match previous {
        Some(state) => state,
        None => {
            let start = first_start(args.days)?;
            DemoState {
                seed: args.seed,
                accounts: args.accounts,
                world_start: start,
                reached: start,
                feed_base: String::new(),
                credentials_issued: 0,
            }
        }
    };
    let start = state.reached;
    let end = start + i64::from(args.days) * DAY;
    let clock = ControlledClock::new(ClockMode::Fixed { at: start as f64 });
    let span = end - start;
    // The credential lapses 40 % of the way in; the demo renews it.
    let mut scenario = mpwatch_sim::Scenario { credential_ttl: span * 2 / 5, ..Default::default() };
    // Three simulated hours of verification pages once the episode starts.
    scenario.quota.cooldown = 3 * 3600;
    let sim = mpwatch_sim::start(SimConfig {
        seed: state.seed,
        synthetic_accounts: state.accounts,
        days: (start - state.world_start) / DAY,
        page_bytes: 20_000,
        legacy_share: 0.2,
        scenario,
        clock: clock.clone(),
        ..SimConfig::default()
    })
    .await
    .context("cannot start the simulator on loopback")?;

    let mut store = Store::open(db_path, &StoreOptions::default())?;
    if continuing {
        // The feed host listens on a new port in every run.
        store.write(|tx| {
            tx.connection()
                .execute(
                    "UPDATE account_sources SET locator = replace(locator, ?1, ?2) WHERE kind = 'feed'",
                    (&state.feed_base, sim.feed_base_url()),
                )
                .map_err(|source| mpwatch_store::StoreError::Sqlite {
                    context: "pointing feed sources at this run's simulator".into(),
                    source,
                })?;
            Ok(())
        })?;
    } else {
        crate::commands::sim::add_world_accounts(&mut store, &sim, start)?;
    }
    state.feed_base = sim.feed_base_url().to_string();
    drop(store);

    let credential = issue(&sim, &mut state);
    let secrets = Arc::new(Mutex::new(Secrets { client: vec![credential.to_client()], ..Secrets::default() }));
    let config = demo_config(&sim)?;
    let reload_config = config.clone();
    let reload_secrets = secrets.clone();
    let setup = ServiceSetup {
        config,
        secrets: secrets.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        db_path: db_path.to_path_buf(),
        clock: Arc::new(clock.clone()),
        reload: Box::new(move || {
            Ok((reload_config.clone(), reload_secrets.lock().unwrap_or_else(PoisonError::into_inner).clone()))
        }),
    };
    let accounts = sim.state().world.accounts().len();
    println!(
        "mpwatch demo: {} simulated days of {accounts} accounts on the built-in WeChat simulator{}",
        args.days,
        if continuing { ", continuing" } else { "" }
    );
    println!("database: {}", db_path.display());
    println!(
        "simulated {} to {} ({TIMEZONE}), a day every {:.1} s; `mpwatch run` does the work",
        local_date(start),
        local_date(end),
        DAY as f64 / TIME_SCALE
    );

    let (control, receiver) = mpsc::channel(4);
    let service = tokio::spawn(mpwatch_service::run(setup, receiver, Notifier::from_env()));
    clock.set(ClockMode::Accelerated { at: start as f64, scale: TIME_SCALE });

    let mut watch = Watch::new(db_path, span)?;
    let mut episode = Episode::Before { at: start + span * 13 / 20 };
    let mut current_credential = credential.name.clone();
    loop {
        tokio::time::sleep(TICK).await;
        if service.is_finished() {
            break;
        }
        let now = clock.now().min(end);
        let seen = watch.look(now)?;
        for cooldown in &seen.new_cooldowns {
            watch.event(now, &format!("cooldown: {cooldown}"));
        }
        if seen.expired.contains(&current_credential) {
            let renewed = issue(&sim, &mut state);
            watch.event(
                now,
                &format!(
                    "credential {current_credential} expired (WeChat: ret -3 no session); renewed as {} and \
                     reloaded, as `systemctl reload mpwatch` does after you update secrets.toml",
                    renewed.name
                ),
            );
            current_credential = renewed.name.clone();
            secrets.lock().unwrap_or_else(PoisonError::into_inner).client = vec![renewed.to_client()];
            control.send(Control::Reload).await.context("the service stopped")?;
        }
        episode = episode.step(&sim, &mut watch, now, &seen);
        if now >= end {
            break;
        }
    }
    clock.set(ClockMode::Fixed { at: end as f64 });
    watch.finish();
    let _ = control.send(Control::Stop).await;
    match tokio::time::timeout(STOP_TIMEOUT, service).await {
        Ok(joined) => joined.context("the service panicked")??,
        Err(_) => bail!("the service did not stop within {} s", STOP_TIMEOUT.as_secs()),
    }
    state.reached = end;
    let counts = watch.look(end)?;
    Ok(Outcome { state, start, end, articles: counts.articles, snapshots: counts.snapshots })
}

/// Issues the next credential set in the simulator (`demo-phone-N`).
fn issue(sim: &SimHandle, state: &mut DemoState) -> SimCredential {
    state.credentials_issued += 1;
    sim.state().issue_credential(Some(format!("demo-phone-{}", state.credentials_issued)))
}

/// The service's configuration for the demo: the simulator as WeChat, limits for a
/// local server, and a production-like schedule.
fn demo_config(sim: &SimHandle) -> Result<Config> {
    let mut config = Config { timezone: TIMEZONE.to_string(), ..Config::default() };
    config.wechat.base_url = url::Url::parse(sim.base_url()).context("the simulator's address")?;
    // A loopback server takes far more than WeChat does.
    let local = RateLimit { interval: Duration::from_millis(1), burst: 50, jitter: Duration::ZERO };
    config.rate_limits.article_page = local.clone();
    config.rate_limits.list_api = local.clone();
    config.rate_limits.count_api = local.clone();
    config.rate_limits.feed = local;
    config.crawl.concurrency_per_host = 8;
    // Writes wait for company at most a few simulated minutes.
    config.crawl.commit_gather = Duration::from_millis(5);
    // Leases are clock time: ten simulated minutes pass in 9 ms here, so items leased
    // ahead would lapse before a worker takes them.
    config.crawl.lease = Duration::from_secs(DAY as u64);
    let entry = |name: &str, cron: &str, job: JobKind| ScheduleEntry {
        name: name.to_string(),
        cron: cron.to_string(),
        job,
        timezone: Some(TIMEZONE.to_string()),
        account: None,
        group: None,
        catch_up: CatchUp::None,
        jitter: Duration::ZERO,
    };
    // A metrics run lasts until the job's next fire and takes each rung as it falls due,
    // so six hours between fires take rungs on time; at this speed a run every 30
    // simulated minutes (28 ms) would end before its first lease.
    config.schedule = vec![
        entry("discover", "0 */4 * * *", JobKind::Discover),
        entry("metrics", "0 */6 * * *", JobKind::Metrics),
        entry("index", "30 0 * * *", JobKind::Index),
        entry("maintenance", "0 4 * * *", JobKind::Maintenance),
    ];
    config.validate("the demo").context("the demo's configuration")?;
    Ok(config)
}

/// The verification episode: WeChat answers everything with its "环境异常" page for
/// three simulated hours; the crawler cools down, escalating, and resumes after.
enum Episode {
    /// Not yet (starts at this instant).
    Before { at: i64 },
    /// Every request is over quota until the crawler has noticed.
    Blocking,
    /// The block runs out by itself.
    Over,
}

impl Episode {
    fn step(self, sim: &SimHandle, watch: &mut Watch, now: i64, seen: &Seen) -> Episode {
        let set_quota = |limit: u64| {
            let mut scenario = sim.state().scenario();
            scenario.quota.per_client = Some(Limit { limit, window: 60 });
            sim.state().set_scenario(scenario);
        };
        match self {
            Episode::Before { at } if now >= at => {
                set_quota(0);
                watch.event(now, "WeChat starts answering with its verification page (环境异常) for 3 hours");
                Episode::Blocking
            }
            Episode::Blocking if !seen.host_cooldowns.is_empty() => {
                // The block already given holds for the scenario's cooldown; no new ones.
                set_quota(u64::MAX);
                Episode::Over
            }
            other => other,
        }
    }
}

/// What one look at the database found.
struct Seen {
    articles: i64,
    snapshots: i64,
    /// Credential sets the service marked expired.
    expired: Vec<String>,
    /// Cooldowns that started since the last look, described.
    new_cooldowns: Vec<String>,
    /// Hosts cooling down now.
    host_cooldowns: Vec<String>,
}

/// Follows the service through the database (read-only, as any user tool would) and
/// shows progress.
struct Watch {
    db_path: PathBuf,
    store: Option<Store>,
    bar: Option<indicatif::ProgressBar>,
    /// Cooldowns already reported, by (scope, target, started_at).
    reported: std::collections::HashSet<(String, String, i64)>,
    start: i64,
    /// The last day a plain progress line was printed (no terminal).
    last_line_day: i64,
}

impl Watch {
    fn new(db_path: &Path, span: i64) -> Result<Watch> {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(span as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Ok(Watch {
            db_path: db_path.to_path_buf(),
            store: None,
            bar,
            reported: Default::default(),
            start: 0,
            last_line_day: -1,
        })
    }

    fn look(&mut self, now: i64) -> Result<Seen> {
        if self.store.is_none() {
            self.store = Some(Store::open_read_only(&self.db_path, Duration::from_secs(5))?);
        }
        if self.start == 0 {
            self.start = now;
        }
        let Some(store) = &self.store else { bail!("the demo database is not open") };
        let conn = store.connection();
        let count = |sql: &str| conn.query_row(sql, [], |row| row.get::<_, i64>(0));
        let articles = count("SELECT count(*) FROM articles").context("counting articles")?;
        let snapshots = count("SELECT count(*) FROM metric_snapshots").context("counting snapshots")?;
        let expired = conn
            .prepare("SELECT name FROM credential_states WHERE state = 'expired'")
            .and_then(|mut statement| statement.query_map([], |row| row.get(0))?.collect())
            .context("reading credential states")?;
        let cooldowns: Vec<(String, String, i64, i64, i64, Option<String>)> = conn
            .prepare("SELECT scope, target, started_at, until, level, reason FROM cooldowns WHERE until > ?1")
            .and_then(|mut statement| {
                statement
                    .query_map([now], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
                    })?
                    .collect()
            })
            .context("reading cooldowns")?;
        let mut new_cooldowns = Vec::new();
        let mut host_cooldowns = Vec::new();
        for (scope, target, started, until, level, reason) in &cooldowns {
            if scope == "host" {
                host_cooldowns.push(target.clone());
            }
            if self.reported.insert((scope.clone(), target.clone(), *started)) {
                new_cooldowns.push(format!(
                    "{scope} {target} level {level} until {} ({})",
                    local_time(*until),
                    reason.as_deref().unwrap_or("anti-crawl signal")
                ));
            }
        }
        let message = format!(
            "{}  {articles} articles  {snapshots} snapshots  {} cooling down",
            local_time(now),
            cooldowns.len()
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position((now - self.start).max(0) as u64);
                bar.set_message(message);
            }
            None => {
                let day = (now - self.start) / DAY;
                if day >= self.last_line_day + 5 {
                    self.last_line_day = day;
                    println!("{message}");
                }
            }
        }
        Ok(Seen { articles, snapshots, expired, new_cooldowns, host_cooldowns })
    }

    /// A line above the progress bar.
    fn event(&self, now: i64, text: &str) {
        let line = format!("{}  {text}", local_time(now));
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn zoned(at: i64) -> Option<jiff::ZonedDateTime> {
    let tz = jiff::tz::TimeZone::get(TIMEZONE).ok()?;
    Some(jiff::Timestamp::from_second(at).ok()?.to_zoned_datetime(tz))
}

fn local_time(at: i64) -> String {
    zoned(at).map_or_else(|| at.to_string(), |z| z.strftime("%Y-%m-%d %H:%M").to_string())
}

fn local_date(at: i64) -> String {
    zoned(at).map_or_else(|| at.to_string(), |z| z.date().to_string())
}

/// Indices, the ranking, a chart, and what to try next.
fn finish(db_path: &Path, fresh_dir: bool, outcome: &Outcome) -> Result<()> {
    let config = Config { timezone: TIMEZONE.to_string(), ..Config::default() };
    let rules = Rules::from_config(&config).context("the demo's time zone")?;
    let mut store = Store::open(db_path, &StoreOptions::default())?;
    // Listed articles the stopped service never fetched wait for the full-text index
    // (maintenance would add them): the demo's database is whole without waiting.
    store.index_all_for_search()?;
    mpwatch_index::update(&mut store, &rules, mpwatch_index::Scope::Incremental, outcome.end)?;
    let first = zoned(outcome.start).context("the demo's first day")?.date();
    let last = zoned(outcome.end - 1).context("the demo's last day")?.date();
    let period = Period::range(first, last, &rules.tz);
    println!(
        "\n{} articles and {} count snapshots stored; ranking of the {} days:\n",
        outcome.articles,
        outcome.snapshots,
        (outcome.end - outcome.start) / DAY
    );
    for index in [Formula::WciV142, Formula::Nri] {
        let text = crate::commands::index::ranking_text(
            &mut store,
            &rules,
            &period,
            index,
            None,
            Some(10),
            (ReportFormat::Table, crate::cli::Lang::En),
            outcome.end,
        )?;
        println!("{text}");
    }
    let dir = db_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let chart_path = dir.join("demo-reads.png");
    let publishers: Vec<String> = store.list_accounts(Some("publishers"))?.iter().map(|a| a.id.to_string()).collect();
    // The whole history of the demo database: a short continued run may hold days
    // without a push of any publisher.
    let since = zoned(outcome.state.world_start).context("the demo's first day")?.date();
    let days =
        (Period::containing(PeriodKind::Day, since, &rules.tz), Period::containing(PeriodKind::Day, last, &rules.tz));
    let chart = mpwatch_chart::Chart {
        accounts: &publishers,
        metric: "reads",
        kind: PeriodKind::Day,
        from: &days.0,
        to: &days.1,
        smooth: false,
    };
    match mpwatch_chart::write_chart(&store, &rules, &chart, mpwatch_chart::Output::Png(&chart_path)) {
        Ok(()) => println!("chart of the four publishers' daily reads: {}", chart_path.display()),
        Err(error) => println!("no chart: {error:#}"),
    }
    let db = shell_quote(&db_path.display().to_string());
    println!(
        r#"
What next
  The database is yours to query ({kept}):
    sqlite3 {db} "SELECT account_name, title, reads, likes, wows FROM v_articles ORDER BY reads DESC LIMIT 10"
    sqlite3 {db} "SELECT datetime(observed_at, 'unixepoch') AS utc, reads FROM metric_snapshots WHERE article_id = 1 ORDER BY observed_at"
    sqlite3 {db} "SELECT first_day, rank, account_name, round(value, 1) FROM v_rankings WHERE period_kind = 'day' AND index_name = 'wci-v14.2' AND rank <= 3 ORDER BY first_day DESC, rank LIMIT 9"
  Reports and charts from it:
    mpwatch --db {db} report --from {first} --to {last} --index nri
    mpwatch --db {db} chart --account 环球科学 --account 科研圈 --from {first} --to {last} --output reads.svg
  Feeds with counts and the dashboard: mpwatch --db {db} serve   (then open http://127.0.0.1:8470/)
  Continue the demo another {days} days: mpwatch --db {db} demo --days {days}
  Real accounts: `mpwatch init`, then `mpwatch account add` and `mpwatch run` (see the README:
  "Real accounts" and deploy/README.md)."#,
        kept = if fresh_dir { "kept in a new temporary directory" } else { "kept" },
        days = (outcome.end - outcome.start) / DAY,
    );
    Ok(())
}

/// Quotes a path for a POSIX shell when it needs it.
fn shell_quote(text: &str) -> String {
    if text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:".contains(c)) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
