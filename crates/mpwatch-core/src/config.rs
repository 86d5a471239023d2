//! The TOML configuration: every key, its default, and validation at load.
//!
//! Unknown keys are errors (a typo must not be silently ignored) and every error names
//! the file and the dotted key, e.g.
//! `config/mpwatch.toml: rate_limits.article_page.interval must be > 0`.
//! `config/mpwatch.example.toml` documents every key; a test keeps it loadable.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The file name mpwatch looks for when no `--config` is given.
pub const CONFIG_FILE_NAME: &str = "mpwatch.toml";
/// The database file name used when neither `--db` nor `database` says otherwise.
pub const DEFAULT_DATABASE_FILE: &str = "mpwatch.db";
/// Where WeChat lives; tests and the demo point `wechat.base_url` at the simulator.
pub const DEFAULT_WECHAT_BASE_URL: &str = "https://mp.weixin.qq.com";
/// The calendar rankings use unless `timezone` says otherwise.
pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";
/// SQLite waits this long for a lock held by another connection before giving up.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest response body accepted (real article pages are 2-4 MB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// A configuration problem, naming the file and the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a value has the wrong type, or a key is unknown.
    #[error("{origin}{}: {message}", key_and_line(key, location))]
    Parse {
        /// The file (or other origin) of the text.
        origin: String,
        /// The dotted key where the problem is (`.` for the top level, or text that is
        /// not TOML).
        key: String,
        /// ` (line N)` when known.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A value has the right type but is out of range.
    #[error("{origin}: {key} {message}")]
    Invalid {
        /// The file (or other origin) of the text.
        origin: String,
        /// The dotted key.
        key: String,
        /// What the value must be.
        message: String,
    },
}

/// The whole configuration. Every field has a default, so an empty file is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The SQLite file (a relative path is relative to the config file's directory), or
    /// a `postgres://` URL.
    pub database: Option<PathBuf>,
    /// The secrets file (credentials); relative to the config file's directory. Must not
    /// be readable by group or others.
    pub secrets_file: Option<PathBuf>,
    /// IANA time zone of the calendar used for days, weeks and months in rankings.
    pub timezone: String,
    /// Database settings.
    pub store: StoreConfig,
    /// This crawler node, when several share one PostgreSQL database.
    pub node: NodeConfig,
    /// Where WeChat is.
    pub wechat: WechatConfig,
    /// HTTP client settings.
    pub http: HttpConfig,
    /// Politeness: one limit per request class.
    pub rate_limits: RateLimits,
    /// Crawl behaviour.
    pub crawl: CrawlConfig,
    /// Which snapshot counts in the indices.
    pub index: IndexConfig,
    /// `mpwatch run`: the service.
    pub service: ServiceConfig,
    /// `mpwatch serve` (and `mpwatch run` when `listen` is set): feeds and the dashboard.
    pub serve: ServeConfig,
    /// When alerts are raised and how often they repeat (receivers are in the secrets
    /// file).
    pub alerts: AlertsConfig,
    /// `[[schedule]]`: the service's jobs; none means [`default_schedule`].
    pub schedule: Vec<ScheduleEntry>,
}

/// What a scheduled job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Ask every source for new articles and fetch their pages.
    Discover,
    /// Take the count snapshots that are due on the ladder.
    Metrics,
    /// Recompute the indices of the periods touched since the last run.
    Index,
    /// `PRAGMA optimize`, a WAL checkpoint, pruning old fetch-log rows.
    Maintenance,
}

impl JobKind {
    /// The name used in the config, logs and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Discover => "discover",
            JobKind::Metrics => "metrics",
            JobKind::Index => "index",
            JobKind::Maintenance => "maintenance",
        }
    }
}

/// What to do about fires missed while the service was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Run the job once at start if any fire was missed.
    #[default]
    Once,
    /// Wait for the next fire.
    None,
}

/// One `[[schedule]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleEntry {
    /// Unique name (logs, `mpwatch status`, the database).
    pub name: String,
    /// Cron expression: 5 fields, or 6 with seconds first.
    pub cron: String,
    /// What it does.
    pub job: JobKind,
    /// IANA time zone of the expression; default: the config's `timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Only this account (id, alias, biz or name), for discover and metrics jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Only the accounts of this group, for discover and metrics jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Fires missed while the service was down: run once at start, or not.
    #[serde(default)]
    pub catch_up: CatchUp,
    /// A random delay of up to this much after each fire (so that many trackers do not
    /// all knock at :00).
    #[serde(with = "humantime_serde", default, skip_serializing_if = "Duration::is_zero")]
    pub jitter: Duration,
}

impl ScheduleEntry {
    fn new(name: &str, cron: &str, job: JobKind, jitter: Duration) -> Self {
        ScheduleEntry {
            name: name.to_string(),
            cron: cron.to_string(),
            job,
            timezone: None,
            account: None,
            group: None,
            catch_up: CatchUp::Once,
            jitter,
        }
    }
}

/// The jobs of a config without `[[schedule]]` (and what `mpwatch init` writes):
/// discover every 30 min with up to 5 min of jitter, metrics every 5 min, indices
/// hourly, maintenance nightly at 03:30.
pub fn default_schedule() -> Vec<ScheduleEntry> {
    vec![
        ScheduleEntry::new("discover", "*/30 * * * *", JobKind::Discover, Duration::from_secs(300)),
        ScheduleEntry::new("metrics", "*/5 * * * *", JobKind::Metrics, Duration::ZERO),
        ScheduleEntry::new("index", "7 * * * *", JobKind::Index, Duration::ZERO),
        ScheduleEntry::new("maintenance", "30 3 * * *", JobKind::Maintenance, Duration::ZERO),
    ]
}

/// `[alerts]`: when alerts are raised and how often the same one repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// The same alert (kind and subject) is sent at most once in this time.
    #[serde(with = "humantime_serde")]
    pub repeat_after: Duration,
    /// A source that failed this many times in a row raises `source_failing`.
    pub source_failures: u32,
    /// How long one webhook delivery may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig { repeat_after: Duration::from_secs(3600), source_failures: 3, timeout: Duration::from_secs(10) }
    }
}

/// `[service]`: how `mpwatch run` behaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// On SIGTERM, how long in-flight requests may take before their leases are released
    /// and the service exits.
    #[serde(with = "humantime_serde")]
    pub stop_timeout: Duration,
    /// Fetch-log rows older than this are deleted by the maintenance job.
    #[serde(with = "humantime_serde")]
    pub fetch_log_max_age: Duration,
    /// Serve Prometheus metrics here (off when absent), e.g. "127.0.0.1:9464".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            stop_timeout: Duration::from_secs(10),
            fetch_log_max_age: Duration::from_secs(90 * 86_400),
            metrics_listen: None,
        }
    }
}

/// `[serve]`: the read-only web server of feeds, the dashboard and exports. Its access
/// token, when it listens beyond loopback, is a secret: `[serve] token` in the secrets
/// file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Where `mpwatch serve` listens, and where `mpwatch run` serves too when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<std::net::SocketAddr>,
    /// The address readers reach the server at (feed self links, OPML), when it is
    /// behind a proxy; `http://<listen>` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<url::Url>,
    /// Requests per minute one client address may make (bursts of a tenth of it).
    pub requests_per_minute: u32,
    /// Items in a feed when the request names no `limit`.
    pub feed_items: u32,
}

/// Where `mpwatch serve` listens by default: loopback only.
pub const DEFAULT_SERVE_LISTEN: &str = "127.0.0.1:8470";

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig { listen: None, base_url: None, requests_per_minute: 600, feed_items: 30 }
    }
}

/// `[index]`: which snapshot of each article enters the indices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// Age of the value used in day and week periods (the rankers read "the day after").
    #[serde(with = "humantime_serde")]
    pub day_observation_age: Duration,
    /// Age of the value used in month periods (the 7th day).
    #[serde(with = "humantime_serde")]
    pub month_observation_age: Duration,
    /// A value first observed later than this multiple of the age is flagged late.
    pub late_factor: f64,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            day_observation_age: Duration::from_secs(86_400),
            month_observation_age: Duration::from_secs(7 * 86_400),
            late_factor: 1.25,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database: None,
            secrets_file: None,
            timezone: DEFAULT_TIMEZONE.to_string(),
            store: StoreConfig::default(),
            node: NodeConfig::default(),
            wechat: WechatConfig::default(),
            http: HttpConfig::default(),
            rate_limits: RateLimits::default(),
            crawl: CrawlConfig::default(),
            index: IndexConfig::default(),
            service: ServiceConfig::default(),
            serve: ServeConfig::default(),
            alerts: AlertsConfig::default(),
            schedule: Vec::new(),
        }
    }
}

impl Config {
    /// The jobs the service runs: the `[[schedule]]` entries, or the defaults.
    pub fn jobs(&self) -> Vec<ScheduleEntry> {
        if self.schedule.is_empty() { default_schedule() } else { self.schedule.clone() }
    }

    /// The time zone of a job's cron expression.
    pub fn job_timezone<'a>(&'a self, entry: &'a ScheduleEntry) -> &'a str {
        entry.timezone.as_deref().unwrap_or(&self.timezone)
    }
}

/// `[store]`: how the SQLite file is opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// How long a connection waits for another one's lock (SQLite `busy_timeout`): a
    /// user's tool holding a write transaction this long is waited out; beyond it, the
    /// crawler defers the affected work (it is taken again later) instead of failing it.
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { busy_timeout: DEFAULT_BUSY_TIMEOUT }
    }
}

/// `[node]`: this process as one crawler node of a cluster sharing one PostgreSQL
/// database. Each node fetches with its own egress (`[http] proxy`), limits and
/// credentials; one process crawls per node. On SQLite there is one node (the
/// machine), and the name is not used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// The node's name, unique in the cluster; the host name when absent.
    pub name: Option<String>,
}

impl Config {
    /// What the crawler leaves through, without credentials: the proxy's
    /// `scheme://host:port` (`[http] proxy`) or `direct`, then ` from <address>` when
    /// `[http] local_address` is set. Shown as a node's egress.
    pub fn egress(&self) -> String {
        let route = match &self.http.proxy {
            None => "direct".into(),
            Some(proxy) => match url::Url::parse(proxy) {
                Ok(url) => {
                    let port = url.port().map(|port| format!(":{port}")).unwrap_or_default();
                    format!("{}://{}{port}", url.scheme(), url.host_str().unwrap_or("?"))
                }
                Err(_) => "(invalid proxy)".into(),
            },
        };
        match self.http.local_address {
            Some(address) => format!("{route} from {address}"),
            None => route,
        }
    }
}

/// `[wechat]`: the endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WechatConfig {
    /// Base URL of every WeChat endpoint; nothing else in mpwatch names the real host.
    pub base_url: url::Url,
}

impl Default for WechatConfig {
    fn default() -> Self {
        WechatConfig { base_url: url::Url::parse(DEFAULT_WECHAT_BASE_URL).expect("the default base URL is valid") }
    }
}

/// `[http]`: the HTTP client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// User agent for anonymous requests (article pages, feeds).
    pub user_agent: String,
    /// Time allowed to open a connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest silence allowed while reading a response.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Longest time for a whole request.
    #[serde(with = "humantime_serde")]
    pub total_timeout: Duration,
    /// Largest body accepted, in bytes.
    pub max_body_bytes: u64,
    /// Redirects followed before giving up.
    pub max_redirects: u32,
    /// Optional proxy for every request (`http://`, `https://`, `socks5://`).
    pub proxy: Option<String>,
    /// The local address every connection leaves from (to the proxy when there is
    /// one): on a machine with several addresses, each node its own. The system's
    /// choice when absent.
    pub local_address: Option<std::net::IpAddr>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            user_agent: concat!("mpwatch/", env!("CARGO_PKG_VERSION")).to_string(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(120),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_redirects: 5,
            proxy: None,
            local_address: None,
        }
    }
}

/// One request class's limit: at most `burst` requests at once, refilled one per
/// `interval`, each delayed by up to `jitter` more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Time between requests once the burst is spent.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Requests allowed back to back.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Random extra delay added to each request, up to this much.
    #[serde(with = "humantime_serde", default)]
    pub jitter: Duration,
}

fn default_burst() -> u32 {
    1
}

impl RateLimit {
    fn every(interval: Duration, jitter: Duration) -> Self {
        RateLimit { interval, burst: 1, jitter }
    }
}

/// `[rate_limits.*]`: one limit per request class, per host (and per credential for the
/// credentialed APIs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Public article pages.
    pub article_page: RateLimit,
    /// Article lists (`profile_ext`, backend lists).
    pub list_api: RateLimit,
    /// Count requests (`getappmsgext`, comments), per credential.
    pub count_api: RateLimit,
    /// Feed URLs, per feed host.
    pub feed: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            article_page: RateLimit::every(Duration::from_secs(2), Duration::from_millis(500)),
            list_api: RateLimit::every(Duration::from_secs(10), Duration::from_secs(2)),
            count_api: RateLimit::every(Duration::from_secs(5), Duration::from_secs(1)),
            feed: RateLimit::every(Duration::from_secs(1), Duration::from_millis(200)),
        }
    }
}

/// `[crawl]`: what a crawl does and how it backs off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrawlConfig {
    /// Requests in flight at once to one host.
    pub concurrency_per_host: u32,
    /// Ages after publication at which count snapshots are taken.
    #[serde(with = "duration_list")]
    pub snapshot_ages: Vec<Duration>,
    /// First cooldown after an anti-crawl signal; doubles on each new signal.
    #[serde(with = "humantime_serde")]
    pub cooldown_initial: Duration,
    /// Longest cooldown.
    #[serde(with = "humantime_serde")]
    pub cooldown_max: Duration,
    /// Attempts per work item before it is marked failed.
    pub max_attempts: u32,
    /// How long a worker holds a work item before another may take it.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Keep every fetched page, zstd-compressed, for `mpwatch reparse`.
    pub archive_raw_pages: bool,
    /// How long crawled items' writes gather into one commit while other items are
    /// still working: longer writes less to disk, and a crash loses (until the leases
    /// run out) at most this much work.
    #[serde(with = "humantime_serde")]
    pub commit_gather: Duration,
}

impl Default for CrawlConfig {
    fn default() -> Self {
        let hour = 3600;
        CrawlConfig {
            concurrency_per_host: 2,
            snapshot_ages: [hour, 6 * hour, 24 * hour, 48 * hour, 72 * hour, 7 * 24 * hour, 30 * 24 * hour]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            cooldown_initial: Duration::from_secs(15 * 60),
            cooldown_max: Duration::from_secs(3 * hour),
            max_attempts: 8,
            lease: Duration::from_secs(10 * 60),
            archive_raw_pages: false,
            commit_gather: Duration::from_secs(1),
        }
    }
}

/// `humantime_serde` has no adapter for `Vec<Duration>`; this one reads and writes
/// a list of human-readable durations (`["1h", "6h"]`).
mod duration_list {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(durations: &[Duration], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(durations.iter().map(|d| humantime::format_duration(*d).to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| humantime::parse_duration(text).map_err(|e| serde::de::Error::custom(format!("`{text}`: {e}"))))
            .collect()
    }
}

/// Where in a TOML file a parse error is, after the file's name: `: key (line N)`, or
/// only ` (line N)` when there is no key to name (the top level, or text that is not
/// TOML: "duplicate key", say, names its key in the message).
pub(crate) fn key_and_line(key: &str, location: &str) -> String {
    if key.is_empty() || key == "." { location.to_string() } else { format!(": {key}{location}") }
}

impl Config {
    /// Reads, parses and validates a config file. Relative paths inside it are resolved
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = crate::files::read_text_limited(path, crate::files::MAX_CONFIG_BYTES)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let mut config = Config::from_toml_str(&text, &path.display().to_string())?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let parse_error = |key: String, error: &toml::de::Error| ConfigError::Parse {
            origin: origin.to_string(),
            key,
            location: error.span().map(|span| format!(" (line {})", line_of(text, span.start))).unwrap_or_default(),
            message: error.message().trim().to_string(),
        };
        let deserializer = toml::Deserializer::parse(text).map_err(|e| parse_error(".".to_string(), &e))?;
        let config: Config =
            serde_path_to_error::deserialize(deserializer).map_err(|e| parse_error(e.path().to_string(), e.inner()))?;
        config.validate(origin)?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        for path in [&mut self.database, &mut self.secrets_file].into_iter().flatten() {
            if path.is_relative() && !path.to_str().is_some_and(is_postgres_url) {
                *path = base.join(&*path);
            }
        }
    }

    /// Checks ranges serde cannot express.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| {
            Err(ConfigError::Invalid { origin: origin.to_string(), key: key.to_string(), message: message.to_string() })
        };
        if crate::schedule::time_zone(&self.timezone).is_err() {
            return invalid("timezone", "must be an IANA time zone name such as Asia/Shanghai");
        }
        if self.serve.requests_per_minute == 0 {
            return invalid("serve.requests_per_minute", "must be at least 1");
        }
        if !(1..=1000).contains(&self.serve.feed_items) {
            return invalid("serve.feed_items", "must be between 1 and 1000");
        }
        let mut names = std::collections::HashSet::new();
        for (i, entry) in self.schedule.iter().enumerate() {
            let key = |field: &str| format!("schedule[{i}].{field}");
            if entry.name.trim().is_empty() {
                return invalid(&key("name"), "must not be empty");
            }
            if !names.insert(entry.name.as_str()) {
                return invalid(&key("name"), &format!("{:?} is used by an earlier job", entry.name));
            }
            if let Some(zone) = &entry.timezone
                && crate::schedule::time_zone(zone).is_err()
            {
                return invalid(&key("timezone"), "must be an IANA time zone name such as Asia/Shanghai");
            }
            if let Err(error) = crate::schedule::CronSchedule::parse(&entry.cron, self.job_timezone(entry)) {
                return invalid(&key("cron"), &format!("{:?} {error}", entry.cron));
            }
            if entry.account.is_some() && entry.group.is_some() {
                return invalid(&key("group"), "cannot be given together with account");
            }
            if (entry.account.is_some() || entry.group.is_some())
                && !matches!(entry.job, JobKind::Discover | JobKind::Metrics)
            {
                return invalid(&key("job"), "takes an account or group filter only as discover or metrics");
            }
        }
        if self.service.stop_timeout.is_zero() {
            return invalid("service.stop_timeout", "must be > 0");
        }
        if self.alerts.source_failures == 0 {
            return invalid("alerts.source_failures", "must be at least 1");
        }
        if self.alerts.timeout.is_zero() {
            return invalid("alerts.timeout", "must be > 0");
        }
        if !matches!(self.wechat.base_url.scheme(), "http" | "https") {
            return invalid("wechat.base_url", "must be an http:// or https:// URL");
        }
        let limits = [
            ("article_page", &self.rate_limits.article_page),
            ("list_api", &self.rate_limits.list_api),
            ("count_api", &self.rate_limits.count_api),
            ("feed", &self.rate_limits.feed),
        ];
        for (name, limit) in limits {
            if limit.interval.is_zero() {
                return invalid(&format!("rate_limits.{name}.interval"), "must be > 0");
            }
            if limit.burst == 0 {
                return invalid(&format!("rate_limits.{name}.burst"), "must be at least 1");
            }
        }
        let positive = [
            ("store.busy_timeout", self.store.busy_timeout),
            ("http.connect_timeout", self.http.connect_timeout),
            ("http.read_timeout", self.http.read_timeout),
            ("http.total_timeout", self.http.total_timeout),
            ("crawl.cooldown_initial", self.crawl.cooldown_initial),
            ("crawl.lease", self.crawl.lease),
        ];
        for (key, value) in positive {
            if value.is_zero() {
                return invalid(key, "must be > 0");
            }
        }
        if self.crawl.commit_gather > Duration::from_secs(60) {
            return invalid("crawl.commit_gather", "must be at most 1m");
        }
        if self.http.max_body_bytes < 1024 {
            return invalid("http.max_body_bytes", "must be at least 1024");
        }
        if self.crawl.concurrency_per_host == 0 {
            return invalid("crawl.concurrency_per_host", "must be at least 1");
        }
        if self.crawl.max_attempts == 0 {
            return invalid("crawl.max_attempts", "must be at least 1");
        }
        if self.crawl.cooldown_max < self.crawl.cooldown_initial {
            return invalid("crawl.cooldown_max", "must be >= crawl.cooldown_initial");
        }
        if self.index.day_observation_age.is_zero() || self.index.month_observation_age.is_zero() {
            return invalid("index", "observation ages must be > 0");
        }
        if self.index.late_factor.is_nan() || self.index.late_factor < 1.0 {
            return invalid("index.late_factor", "must be at least 1");
        }
        if self.crawl.snapshot_ages.iter().any(Duration::is_zero) {
            return invalid("crawl.snapshot_ages", "must all be > 0");
        }
        if self.crawl.snapshot_ages.windows(2).any(|pair| pair[0] >= pair[1]) {
            return invalid("crawl.snapshot_ages", "must be in increasing order");
        }
        if let Some(name) = &self.node.name
            && (name.trim().is_empty() || name.len() > 64 || name.chars().any(char::is_control))
        {
            return invalid("node.name", "must be 1 to 64 characters, without control characters");
        }
        if let Some(proxy) = &self.http.proxy {
            let scheme_ok = url::Url::parse(proxy)
                .map(|url| matches!(url.scheme(), "http" | "https" | "socks5" | "socks5h"))
                .unwrap_or(false);
            if !scheme_ok {
                return invalid("http.proxy", "must be an http://, https:// or socks5:// URL");
            }
        }
        Ok(())
    }
}

fn line_of(text: &str, byte_offset: usize) -> usize {
    text.as_bytes()[..byte_offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// Where the config file is: `explicit` (from `--config` / `MPWATCH_CONFIG`) if given,
/// else the first `mpwatch.toml` found in the current directory, the user's config
/// directory (`~/.config/mpwatch/`), then `/etc/mpwatch/`.
pub fn discover_config(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    search_directories().into_iter().map(|dir| dir.join(CONFIG_FILE_NAME)).find(|path| path.is_file())
}

/// The directories searched for `mpwatch.toml`, in order.
pub fn search_directories() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(".")];
    if let Some(config_dir) = dirs::config_dir() {
        dirs.push(config_dir.join("mpwatch"));
    }
    dirs.push(PathBuf::from("/etc/mpwatch"));
    dirs
}

/// Whether a database setting names a PostgreSQL database (`postgres://` or
/// `postgresql://`, any case) rather than a SQLite file.
pub fn is_postgres_url(database: &str) -> bool {
    let scheme = database.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase());
    matches!(scheme.as_deref(), Some("postgres" | "postgresql"))
}

/// The database to use: `explicit` (from `--db` / `MPWATCH_DB`), else the config's
/// `database`, else `mpwatch.db` in the current directory.
pub fn resolve_database(explicit: Option<&Path>, config: &Config) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| config.database.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATABASE_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        Config::from_toml_str(text, "config/mpwatch.toml").unwrap_err().to_string()
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = Config::from_toml_str("", "x").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.store.busy_timeout, Duration::from_secs(60));
        assert_eq!(config.crawl.snapshot_ages.len(), 7);
    }

    #[test]
    fn zero_interval_names_file_and_key() {
        let error = error_of("[rate_limits.article_page]\ninterval = \"0s\"\n");
        assert_eq!(error, "config/mpwatch.toml: rate_limits.article_page.interval must be > 0");
    }

    #[test]
    fn unknown_key_is_an_error_naming_its_table() {
        let error = error_of("[rate_limits.article_page]\ninterva = \"2s\"\n");
        assert!(error.starts_with("config/mpwatch.toml: rate_limits.article_page"), "{error}");
        assert!(error.contains("unknown field `interva`"), "{error}");
        assert!(error.contains("(line 2)"), "{error}");
        assert!(!error.contains('\n'), "error spans lines: {error}");
    }

    #[test]
    fn unknown_top_level_key_is_an_error() {
        let error = error_of("databse = \"x.db\"\n");
        assert!(error.contains("unknown field `databse`"), "{error}");
        assert!(!error.contains(": ."), "a top-level error names no key: {error}");
    }

    #[test]
    fn text_that_is_not_toml_is_named_by_line_only() {
        let error = error_of("database = \"a.db\"\ndatabase = \"b.db\"\n");
        assert!(error.starts_with("config/mpwatch.toml (line 2): "), "{error}");
        assert!(error.contains("duplicate key"), "{error}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let error = error_of("[crawl]\nmax_attempts = \"many\"\n");
        assert!(error.starts_with("config/mpwatch.toml: crawl.max_attempts"), "{error}");
    }

    #[test]
    fn bad_duration_names_the_key() {
        let error = error_of("[store]\nbusy_timeout = \"soon\"\n");
        assert!(error.starts_with("config/mpwatch.toml: store.busy_timeout"), "{error}");
    }

    #[test]
    fn snapshot_ages_must_increase() {
        let error = error_of("[crawl]\nsnapshot_ages = [\"6h\", \"1h\"]\n");
        assert_eq!(error, "config/mpwatch.toml: crawl.snapshot_ages must be in increasing order");
    }

    #[test]
    fn syntax_error_is_one_line() {
        let error = error_of("[store\n");
        assert!(error.starts_with("config/mpwatch.toml (line 1): "), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn relative_paths_resolve_against_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mpwatch.toml");
        std::fs::write(&path, "database = \"data/m.db\"\nsecrets_file = \"/abs/secrets.toml\"\n").unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.database.unwrap(), dir.path().join("data/m.db"));
        assert_eq!(config.secrets_file.unwrap(), PathBuf::from("/abs/secrets.toml"));
    }

    #[test]
    fn a_postgres_url_is_not_a_relative_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mpwatch.toml");
        std::fs::write(&path, "database = \"postgresql://mpwatch@db.internal/mpwatch\"\n").unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.database.unwrap(), PathBuf::from("postgresql://mpwatch@db.internal/mpwatch"));
        assert!(is_postgres_url("POSTGRES://h/db"));
        assert!(!is_postgres_url("data/postgres.db"));
        assert!(!is_postgres_url("./postgres://x"));
        assert!(!is_postgres_url("mysql://h/db"));
    }

    #[test]
    fn example_config_is_valid_and_documents_every_default() {
        let text = include_str!("../../../config/mpwatch.example.toml");
        let config = Config::from_toml_str(text, "mpwatch.example.toml").unwrap();
        let defaults = Config::default();
        assert_eq!(config.store, defaults.store);
        assert_eq!(config.rate_limits, defaults.rate_limits);
        assert_eq!(config.crawl, defaults.crawl);
        assert_eq!(config.http, defaults.http);
        assert_eq!(config.index, defaults.index);
        assert_eq!(config.service, defaults.service);
        assert_eq!(config.jobs(), defaults.jobs());
    }

    #[test]
    fn schedules_are_checked_and_errors_name_the_entry() {
        let config = Config::from_toml_str(
            "[[schedule]]\nname = \"fast\"\ncron = \"*/10 * * * * *\"\njob = \"metrics\"\ngroup = \"science\"\n\n[[schedule]]\nname = \"nightly\"\ncron = \"0 4 * * *\"\njob = \"maintenance\"\ntimezone = \"Europe/Berlin\"\ncatch_up = \"none\"\n",
            "x",
        )
        .unwrap();
        assert_eq!(config.jobs().len(), 2);
        assert_eq!(config.jobs()[1].catch_up, CatchUp::None);
        assert_eq!(config.job_timezone(&config.jobs()[1]), "Europe/Berlin");
        assert_eq!(config.job_timezone(&config.jobs()[0]), "Asia/Shanghai");
        assert_eq!(Config::default().jobs(), default_schedule());
        let entry = |body: &str| format!("[[schedule]]\nname = \"a\"\n{body}\n");
        assert_eq!(
            error_of(&entry("cron = \"* * *\"\njob = \"discover\"")),
            "config/mpwatch.toml: schedule[0].cron \"* * *\" must have 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, not 3"
        );
        assert_eq!(
            error_of(&entry("cron = \"* * * * *\"\njob = \"discover\"\ntimezone = \"Mars/Olympus\"")),
            "config/mpwatch.toml: schedule[0].timezone must be an IANA time zone name such as Asia/Shanghai"
        );
        assert_eq!(
            error_of(&entry("cron = \"* * * * *\"\njob = \"index\"\naccount = \"x\"")),
            "config/mpwatch.toml: schedule[0].job takes an account or group filter only as discover or metrics"
        );
        assert_eq!(
            error_of(&format!(
                "{}{}",
                entry("cron = \"* * * * *\"\njob = \"index\""),
                entry("cron = \"* * * * *\"\njob = \"index\"")
            )),
            "config/mpwatch.toml: schedule[1].name \"a\" is used by an earlier job"
        );
        assert!(error_of(&entry("cron = \"* * * * *\"\njob = \"sleep\"")).contains("schedule"));
        assert_eq!(
            error_of("timezone = \"Mars/Olympus\"\n"),
            "config/mpwatch.toml: timezone must be an IANA time zone name such as Asia/Shanghai"
        );
    }
}
