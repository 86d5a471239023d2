//! The command line, as clap definitions. Help text here is the reference the README
//! quotes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Track WeChat Official Accounts: crawl articles, keep time-stamped count snapshots,
/// rank accounts.
#[derive(Debug, Parser)]
#[command(name = "mpwatch", version, about, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Config file [default: mpwatch.toml in ., ~/.config/mpwatch/, /etc/mpwatch/]
    #[arg(long, global = true, env = "MPWATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database: a SQLite file or a postgres:// URL [default: the config's `database`,
    /// else ./mpwatch.db]
    #[arg(long, global = true, env = "MPWATCH_DB", value_name = "FILE|URL")]
    pub db: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The main job end to end on the built-in simulator: 30 simulated days of the
    /// service crawling 24 accounts in about 40 s, then a ranking, a chart and what to
    /// try next. Needs no config and never touches your data.
    Demo(DemoArgs),
    /// Write a config (from the commented example), a secrets file and the database.
    Init(InitArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage tracked accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// The database file.
    #[command(subcommand)]
    Db(DbCommand),
    /// Show what the parser extracts from a saved article page (no network, no database).
    Parse(ParseArgs),
    /// Run the WeChat simulator on loopback (for trying mpwatch, tests and benchmarks).
    Sim(SimArgs),
    /// Crawl now: discover articles, fetch pages, take due snapshots (in the foreground,
    /// or handed to the running service and followed).
    Crawl(CrawlArgs),
    /// Run the service: scheduled jobs, ad-hoc crawls, systemd notifications (see
    /// deploy/README.md). SIGTERM stops it gracefully; SIGHUP reloads the config.
    Run,
    /// The service, jobs, running work, queue, sources, credentials, cooldowns, alerts.
    Status {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List stored articles, or show one with its snapshot history.
    Articles(ArticlesArgs),
    /// Re-derive stored articles from archived raw pages (crawl.archive_raw_pages).
    Reparse,
    /// Recompute indices and rankings (only periods touched since the last run), or
    /// `index calc` one index from given numbers.
    Index(IndexArgs),
    /// Print a ranking of the tracked accounts, as rankers print it.
    Report(ReportArgs),
    /// Draw a trend chart of accounts over time (SVG or PNG).
    Chart(ChartArgs),
    /// Serve feeds with counts (Atom, RSS, JSON Feed, OPML) and a read-only dashboard
    /// (rankings, accounts, articles, search, status) over the database. See docs/serve.md.
    Serve(ServeArgs),
    /// Export articles, snapshots or rankings as CSV or JSON Lines (streamed, any size),
    /// or articles as Markdown files with YAML front matter.
    Export(crate::commands::export_args::ExportArgs),
}

/// `mpwatch serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: `[serve] listen`, else 127.0.0.1:8470]. Beyond
    /// loopback, `[serve] token` in the secrets file is required.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
}

/// `mpwatch demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Simulated days to run (the global `--db FILE` continues a demo database).
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Synthetic accounts besides the four publishing-world ones.
    #[arg(long, default_value_t = 20)]
    pub accounts: usize,
    /// The simulated world's seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// `mpwatch chart`.
#[derive(Debug, Args)]
pub struct ChartArgs {
    /// Account to draw (repeatable).
    #[arg(long = "account", value_name = "ACCOUNT", required = true)]
    pub accounts: Vec<String>,
    /// What to draw: reads, read_rate, engagement_rate, wows, likes, n, or an index
    /// (wci-v11, wci-v13, wci-v14.2, wci-v14.2-noshare, nri).
    #[arg(long, default_value = "reads", value_parser = [
        "reads", "read_rate", "engagement_rate", "wows", "likes", "n",
        "wci-v11", "wci-v13", "wci-v14.2", "wci-v14.2-noshare", "nri",
    ])]
    pub metric: String,
    /// Period of each point.
    #[arg(long, value_enum, default_value_t = ReportPeriod::Day)]
    pub period: ReportPeriod,
    /// First date (YYYY-MM-DD).
    #[arg(long)]
    pub from: String,
    /// Last date (YYYY-MM-DD).
    #[arg(long)]
    pub to: String,
    /// Output file; `.svg` or `.png` decides the format.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Daily charts: the 7-day average (days without a push count as 0) instead of a
    /// line with gaps on days without a push.
    #[arg(long)]
    pub smooth: bool,
}

/// `mpwatch index`.
#[derive(Debug, Args)]
pub struct IndexArgs {
    /// `calc FORMULA KEY=VALUE...`.
    #[command(subcommand)]
    pub calc: Option<IndexCommand>,
    /// Recompute every period.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub full: bool,
    /// Only periods from this date (YYYY-MM-DD).
    #[arg(long, requires = "to", value_parser = date_arg)]
    pub from: Option<String>,
    /// Only periods up to this date (inclusive).
    #[arg(long, requires = "from", value_parser = date_arg)]
    pub to: Option<String>,
}

/// `mpwatch index calc`.
#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Compute one index from given numbers, to check a published figure.
    Calc {
        /// wci-v11, wci-v13, wci-v14.2, wci-v14.2-noshare or nri.
        formula: String,
        /// Inputs as KEY=VALUE: R n d Rt Rmax Z Zt Zmax L Lt Lmax RE REt REmax; NRI:
        /// days readSum readMax readAvg headline likeSum. Missing keys count as 0.
        values: Vec<String>,
        /// `{"formula": ..., "value": ...}` with full precision.
        #[arg(long)]
        json: bool,
    },
}

/// Output formats of `mpwatch report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A terminal table.
    Table,
    /// Comma-separated values.
    Csv,
    /// JSON.
    Json,
    /// A Markdown table.
    Md,
}

/// Period kinds of `mpwatch report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportPeriod {
    /// A day.
    Day,
    /// Sunday to Saturday.
    Week,
    /// A calendar month.
    Month,
}

/// `mpwatch report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Period kind.
    #[arg(long, value_enum, default_value_t = ReportPeriod::Day)]
    pub period: ReportPeriod,
    /// A date in the period (YYYY-MM-DD) [default: the last period whose data is final].
    #[arg(long, conflicts_with_all = ["from", "to"], value_parser = date_arg)]
    pub date: Option<String>,
    /// A custom range instead: first day (YYYY-MM-DD)...
    #[arg(long, requires = "to", value_parser = date_arg)]
    pub from: Option<String>,
    /// ...and last day (inclusive).
    #[arg(long, requires = "from", value_parser = date_arg)]
    pub to: Option<String>,
    /// Index to rank by.
    #[arg(long, default_value = "wci-v14.2", value_parser = ["wci-v11", "wci-v13", "wci-v14.2", "wci-v14.2-noshare", "nri"])]
    pub index: String,
    /// Only accounts in this group.
    #[arg(long)]
    pub group: Option<String>,
    /// Only the first N.
    #[arg(long)]
    pub top: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Column headers: English, or the Chinese ones rankers print (总阅读数, 头条阅读, ...).
    #[arg(long, value_enum, default_value_t = Lang::En)]
    pub lang: Lang,
}

/// The language of a report's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// English.
    En,
    /// Chinese, as Qingbo and Newrank print their rankings.
    Zh,
}

/// `mpwatch crawl`.
#[derive(Debug, Args)]
pub struct CrawlArgs {
    /// Only this account (id, biz, alias, name; repeatable).
    #[arg(long = "account", value_name = "ACCOUNT")]
    pub accounts: Vec<String>,
    /// Only accounts in this group.
    #[arg(long)]
    pub group: Option<String>,
    /// Also fetch this article URL (repeatable).
    #[arg(long = "url", value_name = "URL")]
    pub urls: Vec<String>,
    /// Do not take count snapshots.
    #[arg(long, conflicts_with = "metrics_only")]
    pub no_metrics: bool,
    /// Only take due count snapshots (no discovery, no pages).
    #[arg(long)]
    pub metrics_only: bool,
    /// Page profile_ext lists all the way back.
    #[arg(long)]
    pub backfill: bool,
    /// Show what would be crawled; fetch and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With a service running: hand the crawl over and return at once with the request
    /// id instead of following it.
    #[arg(long, conflicts_with = "dry_run")]
    pub enqueue: bool,
}

/// `mpwatch articles`.
#[derive(Debug, Args)]
pub struct ArticlesArgs {
    /// `show URL|KEY`: one article with its snapshot history.
    #[command(subcommand)]
    pub show: Option<ArticlesCommand>,
    /// Only this account.
    #[arg(long)]
    pub account: Option<String>,
    /// Published on or after this date (YYYY-MM-DD, in the configured time zone).
    #[arg(long, value_parser = date_arg)]
    pub since: Option<String>,
    /// Only this status (ok, deleted, blocked, unavailable, pending).
    #[arg(long, value_parser = ["ok", "deleted", "blocked", "unavailable", "pending"])]
    pub status: Option<String>,
    /// At most N articles, the newest.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// JSON with the column names of docs/schema.md.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `mpwatch articles show`.
#[derive(Debug, Subcommand)]
pub enum ArticlesCommand {
    /// One article (by URL, short link or biz/mid/idx) with its whole snapshot history.
    Show {
        /// URL, short link or `biz/mid/idx`.
        article: String,
    },
}

/// `mpwatch sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address of the simulated WeChat host.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Address of the simulated feed host (a second host, as feed tools are).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub feed_listen: std::net::SocketAddr,
    /// Everything in the world derives from it.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Synthetic accounts besides the four publishing-world ones.
    #[arg(long, default_value_t = 50)]
    pub accounts: usize,
    /// Days of history the world has.
    #[arg(long, default_value_t = 30)]
    pub days: i64,
    /// Approximate size of article pages in bytes (real 2025 pages: 2-4 MB).
    #[arg(long, default_value_t = 3_000_000)]
    pub page_bytes: usize,
    /// Share of accounts whose pages use the 2018 layout.
    #[arg(long, default_value_t = 0.2)]
    pub legacy_share: f64,
    /// Scenario file (TOML or JSON): quotas, faults, credential lifetime.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Simulated seconds per real second (3600: an hour per second).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Worker threads of the server.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Also write mpwatch.toml, secrets.toml and a database with the world's accounts
    /// into DIR, ready for `mpwatch --config DIR/mpwatch.toml crawl`.
    #[arg(long, value_name = "DIR")]
    pub write_config: Option<PathBuf>,
}

/// `mpwatch parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// HTML files (a shell glob of a saved archive), or - for standard input.
    #[arg(required = true, num_args = 1.., value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The URL the page was fetched from (fills in biz/mid/idx/sn a page lacks; one
    /// file only).
    #[arg(long)]
    pub url: Option<String>,
    /// JSON instead of text: one object for one file, JSON Lines (one object per file,
    /// with `file`) for several.
    #[arg(long)]
    pub json: bool,
    /// Include the body text.
    #[arg(long)]
    pub text: bool,
    /// Largest file read, in MiB (a saved WeChat page is well under 5 MiB; a file
    /// larger than this is refused rather than read into memory).
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_mib: u64,
}

/// `mpwatch init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory for mpwatch.toml, secrets.toml and mpwatch.db.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// Overwrite an existing mpwatch.toml.
    #[arg(long)]
    pub force: bool,
}

/// `mpwatch config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config and secrets files and print what was found (never secret values).
    Check,
}

/// `mpwatch account ...`.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Track an account, given an article URL (long or short), a biz, a gh_ id, an alias
    /// (微信号) or, with --feed, a feed URL. Adding it again merges and changes nothing.
    Add(AccountAddArgs),
    /// List tracked accounts.
    List(AccountListArgs),
    /// Stop tracking an account (disables it; --purge deletes it and its data).
    Remove(AccountRemoveArgs),
    /// Add the feeds of an OPML file (wewe-rss, RSSHub, feed readers); idempotent.
    ImportOpml(ImportOpmlArgs),
    /// Write tracked accounts as OPML: feeds with xmlUrl, groups as folders.
    ExportOpml(ExportOpmlArgs),
}

/// `mpwatch account add`.
#[derive(Debug, Args)]
pub struct AccountAddArgs {
    /// Article URL, biz, gh_ id, alias, or (with --feed) a feed URL.
    pub target: String,
    /// TARGET is an RSS / Atom / JSON Feed URL.
    #[arg(long)]
    pub feed: bool,
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Put the account in this group (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
}

/// `mpwatch account list`.
#[derive(Debug, Args)]
pub struct AccountListArgs {
    /// Only accounts in this group.
    #[arg(long)]
    pub group: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `mpwatch account remove`.
#[derive(Debug, Args)]
pub struct AccountRemoveArgs {
    /// Id (#3), biz, gh_ id, alias, name or feed URL.
    pub account: String,
    /// Delete the account with its articles and snapshots instead of disabling it.
    #[arg(long)]
    pub purge: bool,
}

/// `mpwatch account import-opml`.
#[derive(Debug, Args)]
pub struct ImportOpmlArgs {
    /// OPML file, or - for standard input.
    pub file: PathBuf,
    /// Also put every imported account in this group (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
}

/// `mpwatch account export-opml`.
#[derive(Debug, Args)]
pub struct ExportOpmlArgs {
    /// Write here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only accounts in this group.
    #[arg(long)]
    pub group: Option<String>,
}

/// `mpwatch db ...`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Print the database path mpwatch would use.
    Path,
    /// Create the database or apply pending migrations.
    Migrate {
        /// Add mpwatch's tables to a SQLite file that already has another program's
        /// tables (refused otherwise, and the file left as it is).
        #[arg(long)]
        adopt: bool,
    },
    /// Row counts, file size and schema version.
    Stats {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Row count and checksum of every table `db copy` moves, read in one snapshot: two
    /// databases with the same history print the same (SQLite or PostgreSQL).
    Checksums {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Copy a whole history between databases, SQLite or PostgreSQL either way (e.g. a
    /// SQLite file into PostgreSQL for a cluster of nodes). The destination must be new
    /// or empty; it is written in one transaction and compared table by table (rows and
    /// checksum) with the source before it commits.
    Copy {
        /// The database to read: a SQLite file or a postgres:// URL.
        #[arg(long, value_name = "DATABASE")]
        from: String,
        /// The database to write: a SQLite file (created) or a postgres:// URL.
        #[arg(long, value_name = "DATABASE")]
        to: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A `YYYY-MM-DD` date argument, checked when the command line is read (a bad date is
/// a usage error, exit 2).
fn date_arg(text: &str) -> Result<String, String> {
    text.parse::<jiff::civil::Date>()
        .map(|_| text.to_string())
        .map_err(|_| format!("`{text}` is not a date (YYYY-MM-DD)"))
}
