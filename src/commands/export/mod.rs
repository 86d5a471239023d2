//! `mpwatch export`: articles, snapshots and rankings as CSV or JSON Lines, and articles
//! as Markdown files with YAML front matter.
//!
//! Every export streams: rows are read from SQLite one at a time and written at once, so
//! a million-row history takes as little memory as ten rows. Files appear complete or
//! not at all (written to a temporary file beside the target, then renamed over it).

mod markdown;

use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use jiff::ZonedDateTime;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use mpwatch_store::Store;
use mpwatch_store::articles::LATEST_SNAPSHOT_JOIN;
use rusqlite::types::{Value, ValueRef};

use crate::cli::ReportPeriod;
use crate::commands::export_args::{
    ExportArgs, ExportFilterArgs, ExportFormat, ExportMarkdownArgs, ExportOutputArgs, ExportRankingsArgs, ExportWhat,
};
use crate::context::AppContext;

/// Runs `mpwatch export ...`.
pub fn run(context: &AppContext, args: &ExportArgs) -> Result<()> {
    let store = context.open_store_read_only()?;
    let zone = &context.config.timezone;
    let tz = TimeZone::get(zone).with_context(|| format!("unknown time zone {zone}"))?;
    match &args.what {
        ExportWhat::Articles(table) => {
            let conditions = article_conditions(&store, &table.filter, &tz, TimeColumn::Published)?;
            // (published_at, id) is the order of the articles_by_published index: no sort.
            let sql =
                format!("{ARTICLES_SELECT} {LATEST_SNAPSHOT_JOIN}{} ORDER BY a.published_at, a.id", conditions.sql);
            export_table(&store, &sql, &conditions.params, ARTICLE_COLUMNS, &table.target, &tz)
        }
        ExportWhat::Snapshots(table) => {
            let conditions = article_conditions(&store, &table.filter, &tz, TimeColumn::Observed)?;
            let sql = format!("{SNAPSHOTS_SELECT}{} ORDER BY s.article_id, s.observed_at, s.id", conditions.sql);
            export_table(&store, &sql, &conditions.params, SNAPSHOT_COLUMNS, &table.target, &tz)
        }
        ExportWhat::Rankings(rankings) => export_rankings(&store, rankings, &tz),
        ExportWhat::Markdown(markdown) => markdown::export_markdown(&store, markdown, &tz),
    }
}

/// One column of a table export.
struct Column {
    /// The CSV header and JSON key.
    name: &'static str,
    /// The SQL value is unix seconds, written as `YYYY-MM-DD HH:MM:SS` in the configured
    /// zone (SQLite cannot do zones with daylight saving, so Rust formats it).
    local_time: bool,
}

/// A column written as SQLite returns it.
const fn plain(name: &'static str) -> Column {
    Column { name, local_time: false }
}

/// A unix-seconds column written as local time.
const fn local(name: &'static str) -> Column {
    Column { name, local_time: true }
}

/// Articles (joined to their latest snapshot, [`LATEST_SNAPSHOT_JOIN`]). The body (`content_text`) is left out: it is
/// most of the database's size, and `export markdown` is for bodies.
const ARTICLES_SELECT: &str = "SELECT a.id, a.account_id, coalesce(acc.nickname, acc.alias, a.biz), a.biz, a.mid,
        a.idx, a.url, a.title, a.author, a.digest, a.published_at, a.published_at, a.kind, a.copyright,
        a.status, a.word_count, a.image_count,
        m.reads, m.reads_capped, m.likes, m.wows, m.shares, m.comments, m.observed_at
 FROM articles a
 LEFT JOIN accounts acc ON acc.id = a.account_id";

/// The columns of [`ARTICLES_SELECT`], in its order.
const ARTICLE_COLUMNS: &[Column] = &[
    plain("id"),
    plain("account_id"),
    plain("account"),
    plain("biz"),
    plain("mid"),
    plain("idx"),
    plain("url"),
    plain("title"),
    plain("author"),
    plain("digest"),
    plain("published_at"),
    local("published_at_local"),
    plain("kind"),
    plain("copyright"),
    plain("status"),
    plain("word_count"),
    plain("image_count"),
    plain("reads"),
    plain("reads_capped"),
    plain("likes"),
    plain("wows"),
    plain("shares"),
    plain("comments"),
    plain("observed_at"),
];

/// Count snapshots with their article's account.
const SNAPSHOTS_SELECT: &str = "SELECT s.id, s.article_id, a.account_id, coalesce(acc.nickname, acc.alias, a.biz),
        s.observed_at, s.observed_at, s.age_seconds, s.rung_seconds, s.reads, s.reads_capped, s.likes, s.wows,
        s.shares, s.comments, s.source
 FROM metric_snapshots s
 JOIN articles a ON a.id = s.article_id
 LEFT JOIN accounts acc ON acc.id = a.account_id";

/// The columns of [`SNAPSHOTS_SELECT`], in its order.
const SNAPSHOT_COLUMNS: &[Column] = &[
    plain("id"),
    plain("article_id"),
    plain("account_id"),
    plain("account"),
    plain("observed_at"),
    local("observed_at_local"),
    plain("age_seconds"),
    plain("rung_seconds"),
    plain("reads"),
    plain("reads_capped"),
    plain("likes"),
    plain("wows"),
    plain("shares"),
    plain("comments"),
    plain("source"),
];

/// Stored rankings, from the tables rather than `v_rankings`: the view cannot be
/// filtered by period start through an index. Sums are stored as REAL (10万+ counts as
/// 100001); they are whole numbers and are written as integers, as `mpwatch report`
/// prints them.
///
/// Ranks count the selection, as `report --group` does: competition ranks by value
/// among the selected accounts that published in the period (the stored `rank` when all
/// are selected); an account that published nothing is unranked.
const RANKINGS_SELECT: &str = "SELECT v.period_kind, p.first_day, v.index_name,
        CASE WHEN p.n > 0 THEN rank() OVER (PARTITION BY v.period_kind, v.period_start, v.index_name, p.n > 0
                                            ORDER BY v.value DESC) END AS selection_rank, v.account_id,
        coalesce(acc.nickname, acc.alias, acc.biz), p.n, p.pushes, CAST(round(p.reads) AS INTEGER),
        CAST(round(p.reads_max) AS INTEGER), CAST(round(p.reads_headline) AS INTEGER),
        CAST(round(p.wows) AS INTEGER), CAST(round(p.likes) AS INTEGER), v.value, p.provisional,
        p.late_articles, p.missing_articles
 FROM index_values v
 JOIN index_periods p USING (account_id, period_kind, period_start)
 JOIN accounts acc ON acc.id = v.account_id";

/// The columns of [`RANKINGS_SELECT`], in its order.
const RANKING_COLUMNS: &[Column] = &[
    plain("period_kind"),
    plain("period_start"),
    plain("index"),
    plain("rank"),
    plain("account_id"),
    plain("account"),
    plain("n"),
    plain("pushes"),
    plain("reads"),
    plain("reads_max"),
    plain("reads_headline"),
    plain("wows"),
    plain("likes"),
    plain("value"),
    plain("provisional"),
    plain("late"),
    plain("missing"),
];

/// A WHERE clause assembled from fixed SQL fragments, each with exactly one `?`, and the
/// values bound to them in order: user input only ever reaches SQLite as a bound value.
#[derive(Debug, Default)]
struct Conditions {
    /// Empty, or ` WHERE ... AND ...`.
    sql: String,
    /// One value per `?` in `sql`.
    params: Vec<Value>,
}

impl Conditions {
    /// Adds `fragment` (one `?`, bound to `value`).
    fn push(&mut self, fragment: &'static str, value: Value) {
        debug_assert_eq!(fragment.matches('?').count(), 1, "{fragment}");
        self.sql.push_str(if self.sql.is_empty() { " WHERE " } else { " AND " });
        self.sql.push_str(fragment);
        self.params.push(value);
    }
}

/// The time a `--since`/`--until` filter applies to.
#[derive(Debug, Clone, Copy)]
enum TimeColumn {
    /// Articles: `articles.published_at`.
    Published,
    /// Snapshots: `metric_snapshots.observed_at`.
    Observed,
}

/// The filters shared by the article, snapshot and Markdown exports, on a query whose
/// articles table is `a` (and snapshots table `s`).
fn article_conditions(store: &Store, filter: &ExportFilterArgs, tz: &TimeZone, time: TimeColumn) -> Result<Conditions> {
    let mut conditions = Conditions::default();
    if !filter.accounts.is_empty() {
        let mut ids = Vec::with_capacity(filter.accounts.len());
        for text in &filter.accounts {
            ids.push(store.resolve_account(text)?.id);
        }
        // One JSON array bound to one `?`, so the SQL text is the same however many
        // accounts are given.
        let ids = serde_json::to_string(&ids).context("encoding account ids")?;
        conditions.push("a.account_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?))", Value::Text(ids));
    }
    if let Some(group) = &filter.group {
        check_group(store, group)?;
        conditions.push(
            "EXISTS (SELECT 1 FROM account_groups g WHERE g.account_id = a.account_id AND g.name = ?)",
            Value::Text(group.clone()),
        );
    }
    let (start, end) = day_range(filter.since, filter.until, tz)?;
    let (at_or_after, before) = match time {
        TimeColumn::Published => ("a.published_at >= ?", "a.published_at < ?"),
        TimeColumn::Observed => ("s.observed_at >= ?", "s.observed_at < ?"),
    };
    if let Some(start) = start {
        conditions.push(at_or_after, Value::Integer(start));
    }
    if let Some(end) = end {
        conditions.push(before, Value::Integer(end));
    }
    Ok(conditions)
}

/// A group exists only through its members, so a group without rows is a typo: say so
/// rather than export nothing.
fn check_group(store: &Store, group: &str) -> Result<()> {
    let known: bool = store
        .connection()
        .query_row("SELECT EXISTS (SELECT 1 FROM account_groups WHERE name = ?1)", [group], |row| row.get(0))
        .with_context(|| format!("looking up group {group}"))?;
    if !known {
        bail!("no account is in group `{group}` (see `mpwatch account list`)");
    }
    Ok(())
}

/// `--since` and `--until` as unix seconds: local midnight of the first day, and local
/// midnight after the last day (exclusive), so `--until` includes its whole day.
fn day_range(since: Option<Date>, until: Option<Date>, tz: &TimeZone) -> Result<(Option<i64>, Option<i64>)> {
    if let (Some(since), Some(until)) = (since, until)
        && since > until
    {
        bail!("--since {since} is after --until {until}");
    }
    let start = since.map(|day| local_midnight(day, tz)).transpose()?;
    let end = until
        .map(|day| {
            let next = day.tomorrow().with_context(|| format!("--until {day}: no day after it"))?;
            local_midnight(next, tz)
        })
        .transpose()?;
    Ok((start, end))
}

/// The first instant of `day` in the zone, as unix seconds.
fn local_midnight(day: Date, tz: &TimeZone) -> Result<i64> {
    Ok(day
        .to_zoned_datetime(tz.clone())
        .with_context(|| format!("{day}: not a day in the time zone"))?
        .timestamp()
        .as_second())
}

/// `mpwatch export rankings`.
fn export_rankings(store: &Store, args: &ExportRankingsArgs, tz: &TimeZone) -> Result<()> {
    let kind = match args.period {
        ReportPeriod::Day => "day",
        ReportPeriod::Week => "week",
        ReportPeriod::Month => "month",
    };
    let mut conditions = Conditions::default();
    conditions.push("v.period_kind = ?", Value::Text(kind.to_string()));
    if args.index != "all" {
        conditions.push("v.index_name = ?", Value::Text(args.index.clone()));
    }
    if let Some(group) = &args.group {
        check_group(store, group)?;
        conditions.push(
            "EXISTS (SELECT 1 FROM account_groups g WHERE g.account_id = v.account_id AND g.name = ?)",
            Value::Text(group.clone()),
        );
    }
    // A period belongs to the range by its start (local midnight of its first day).
    let (start, end) = day_range(args.since, args.until, tz)?;
    if let Some(start) = start {
        conditions.push("v.period_start >= ?", Value::Integer(start));
    }
    if let Some(end) = end {
        conditions.push("v.period_start < ?", Value::Integer(end));
    }
    // Accounts that published nothing have no rank: they follow the ranked ones.
    let sql = format!(
        "{RANKINGS_SELECT}{} ORDER BY v.period_start, v.index_name, selection_rank NULLS LAST, v.account_id",
        conditions.sql
    );
    export_table(store, &sql, &conditions.params, RANKING_COLUMNS, &args.target, tz)
}

/// Runs `sql` and writes its rows to standard output or to `--output`.
fn export_table(
    store: &Store,
    sql: &str,
    params: &[Value],
    columns: &[Column],
    target: &ExportOutputArgs,
    tz: &TimeZone,
) -> Result<()> {
    let mut statement = store.connection().prepare(sql).context("preparing the export query")?;
    // The column lists are written beside their queries; a mismatch is a bug to catch
    // before anything is written.
    if statement.column_count() != columns.len() {
        bail!("export query returns {} columns for {} names", statement.column_count(), columns.len());
    }
    match target.output.as_deref().filter(|path| path.as_os_str() != "-") {
        None => {
            let out = BufWriter::new(std::io::stdout().lock());
            write_rows(&mut statement, params, columns, target.format, tz, out)
                .context("exporting to standard output")?;
        }
        Some(path) => {
            let rows = write_atomically(path, true, |out| {
                write_rows(&mut statement, params, columns, target.format, tz, out)
                    .with_context(|| format!("exporting to {}", path.display()))
            })?;
            eprintln!("wrote {rows} rows to {}", path.display());
        }
    }
    Ok(())
}

/// Streams the rows of `statement` to `out` in `format`, one row at a time, and returns
/// how many were written. The one code path of every table export.
fn write_rows<W: Write>(
    statement: &mut mpwatch_store::sql::Statement<'_>,
    params: &[Value],
    columns: &[Column],
    format: ExportFormat,
    tz: &TimeZone,
    out: W,
) -> Result<u64> {
    let mut sink = Sink::new(format, out, columns)?;
    let mut rows =
        statement.query(mpwatch_store::sql::params_from_iter(params.iter())).context("running the export query")?;
    let mut count = 0u64;
    while let Some(row) = rows.next().context("reading the next row")? {
        for (index, column) in columns.iter().enumerate() {
            let raw = row.get_ref(index)?;
            let local = match raw {
                ValueRef::Integer(seconds) if column.local_time => local_time_text(seconds, tz),
                _ => None,
            };
            let value = match &local {
                Some(text) => ValueRef::Text(text.as_bytes()),
                None => raw,
            };
            sink.field(index, value)?;
        }
        sink.end_row()?;
        count += 1;
    }
    sink.finish()?;
    Ok(count)
}

/// Where rows go: a CSV writer, or JSON Lines written straight to the output.
enum Sink<W: Write> {
    /// CSV with a header row.
    Csv(Box<csv::Writer<W>>),
    /// One JSON object per line.
    Jsonl {
        /// The output.
        out: W,
        /// Each column's key, encoded once as a JSON string followed by `:`.
        keys: Vec<String>,
    },
}

impl<W: Write> Sink<W> {
    /// Starts the output (the CSV header row).
    fn new(format: ExportFormat, out: W, columns: &[Column]) -> Result<Sink<W>> {
        match format {
            ExportFormat::Csv => {
                let mut writer = csv::Writer::from_writer(out);
                writer.write_record(columns.iter().map(|column| column.name))?;
                Ok(Sink::Csv(Box::new(writer)))
            }
            ExportFormat::Jsonl => {
                // Objects are written key by key rather than built as a serde_json::Map
                // per row: the same text, without allocating every key again per row.
                let keys = columns
                    .iter()
                    .map(|column| serde_json::to_string(column.name).map(|key| key + ":"))
                    .collect::<Result<Vec<String>, _>>()?;
                Ok(Sink::Jsonl { out, keys })
            }
        }
    }

    /// Writes the value of column `index` of the current row.
    fn field(&mut self, index: usize, value: ValueRef<'_>) -> Result<()> {
        match self {
            Sink::Csv(writer) => writer.write_field(csv_field(value))?,
            Sink::Jsonl { out, keys } => {
                out.write_all(if index == 0 { b"{" } else { b"," })?;
                out.write_all(keys[index].as_bytes())?;
                serde_json::to_writer(&mut *out, &json_value(value))?;
            }
        }
        Ok(())
    }

    /// Ends the current row.
    fn end_row(&mut self) -> Result<()> {
        match self {
            Sink::Csv(writer) => writer.write_record(None::<&[u8]>)?,
            Sink::Jsonl { out, .. } => out.write_all(b"}\n")?,
        }
        Ok(())
    }

    /// Flushes everything to the output (errors here are real: a full disk shows at
    /// the last write).
    fn finish(self) -> Result<()> {
        match self {
            Sink::Csv(mut writer) => writer.flush()?,
            Sink::Jsonl { mut out, .. } => out.flush()?,
        }
        Ok(())
    }
}

/// A SQLite value as a CSV field: NULL is empty, numbers are their shortest exact text,
/// text as stored (quoting is the CSV writer's job), a blob as hex.
fn csv_field(value: ValueRef<'_>) -> Cow<'_, [u8]> {
    match value {
        ValueRef::Null => Cow::Borrowed(b""),
        ValueRef::Integer(number) => Cow::Owned(number.to_string().into_bytes()),
        ValueRef::Real(number) => Cow::Owned(number.to_string().into_bytes()),
        ValueRef::Text(text) => Cow::Borrowed(text),
        ValueRef::Blob(bytes) => Cow::Owned(hex(bytes).into_bytes()),
    }
}

/// A SQLite value as JSON: NULL is null, numbers are numbers (a non-finite real, which
/// JSON cannot hold, is null), text a string, a blob a hex string.
fn json_value(value: ValueRef<'_>) -> serde_json::Value {
    match value {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(number) => serde_json::Value::from(number),
        ValueRef::Real(number) => serde_json::Number::from_f64(number).map_or(serde_json::Value::Null, Into::into),
        ValueRef::Text(text) => serde_json::Value::String(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(bytes) => serde_json::Value::String(hex(bytes)),
    }
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}"); // writing to a String cannot fail
    }
    text
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` in the zone; None for a time out of range
/// (the raw number is written then).
fn local_time_text(seconds: i64, tz: &TimeZone) -> Option<String> {
    let zoned = zoned(seconds, tz)?;
    jiff::fmt::strtime::format("%Y-%m-%d %H:%M:%S", &zoned).ok()
}

/// Unix seconds in the zone.
fn zoned(seconds: i64, tz: &TimeZone) -> Option<ZonedDateTime> {
    Some(jiff::Timestamp::from_second(seconds).ok()?.to_zoned_datetime(tz.clone()))
}

/// RFC 3339 with the zone's offset (`2025-03-01T08:00:00+08:00`).
fn rfc3339(zoned: &ZonedDateTime) -> Result<String> {
    jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%S%:z", zoned).context("formatting a time")
}

/// Writes `path` through a temporary file in the same directory that is renamed over it
/// at the end, so an interrupted or failed export never leaves a half-written file (an
/// existing file stays as it was). With `durable`, the data reaches the disk before the
/// rename, so a power cut cannot leave an empty file under the name either.
fn write_atomically<T>(
    path: &Path,
    durable: bool,
    write: impl FnOnce(&mut BufWriter<&mut File>) -> Result<T>,
) -> Result<T> {
    // A rename is atomic only within one file system, hence the same directory.
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".mpwatch-export-");
    // tempfile creates files 0600; an export is an ordinary file, readable as the umask
    // allows (open() applies the umask to this mode).
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut temp =
        builder.tempfile_in(dir).with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let value = {
        let mut out = BufWriter::new(temp.as_file_mut());
        let value = write(&mut out)?;
        out.flush().with_context(|| format!("cannot write {}", path.display()))?;
        value
    };
    if durable {
        temp.as_file().sync_all().with_context(|| format!("cannot write {}", path.display()))?;
    }
    // On an error the temporary file is dropped, which deletes it.
    temp.persist(path).map_err(|error| error.error).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shanghai() -> TimeZone {
        TimeZone::get("Asia/Shanghai").expect("bundled time zone")
    }

    #[test]
    fn csv_fields_are_the_values_as_text() {
        assert_eq!(csv_field(ValueRef::Null).as_ref(), b"");
        assert_eq!(csv_field(ValueRef::Integer(-42)).as_ref(), b"-42");
        assert_eq!(csv_field(ValueRef::Real(0.5)).as_ref(), b"0.5");
        assert_eq!(csv_field(ValueRef::Real(3.0)).as_ref(), b"3");
        assert_eq!(csv_field(ValueRef::Text("标题, \"x\"".as_bytes())).as_ref(), "标题, \"x\"".as_bytes());
        assert_eq!(csv_field(ValueRef::Blob(&[0xde, 0xad, 0x01])).as_ref(), b"dead01");
    }

    #[test]
    fn json_values_keep_their_types() {
        use serde_json::json;
        assert_eq!(json_value(ValueRef::Null), json!(null));
        assert_eq!(json_value(ValueRef::Integer(100001)), json!(100001));
        assert_eq!(json_value(ValueRef::Real(1.5)), json!(1.5));
        assert_eq!(json_value(ValueRef::Real(f64::INFINITY)), json!(null));
        assert_eq!(json_value(ValueRef::Text("环球科学".as_bytes())), json!("环球科学"));
        assert_eq!(json_value(ValueRef::Blob(&[0xde, 0xad])), json!("dead"));
    }

    #[test]
    fn local_times_are_in_the_configured_zone() {
        assert_eq!(local_time_text(1_700_000_000, &shanghai()).as_deref(), Some("2023-11-15 06:13:20"));
        let zoned = zoned(1_700_000_000, &shanghai()).expect("in range");
        assert_eq!(rfc3339(&zoned).expect("formats"), "2023-11-15T06:13:20+08:00");
    }

    #[test]
    fn until_includes_its_whole_day() -> Result<()> {
        let (start, end) = day_range(Some("2025-01-01".parse()?), Some("2025-01-31".parse()?), &shanghai())?;
        assert_eq!(start, Some(1_735_660_800)); // 2025-01-01 00:00 +08:00
        assert_eq!(end, Some(1_738_339_200)); // 2025-02-01 00:00 +08:00
        assert!(day_range(Some("2025-02-01".parse()?), Some("2025-01-31".parse()?), &shanghai()).is_err());
        Ok(())
    }

    #[test]
    fn conditions_bind_one_value_per_fragment() {
        let mut conditions = Conditions::default();
        assert_eq!(conditions.sql, "");
        conditions.push("v.period_kind = ?", Value::Text("day".into()));
        conditions.push("v.period_start >= ?", Value::Integer(1));
        assert_eq!(conditions.sql, " WHERE v.period_kind = ? AND v.period_start >= ?");
        assert_eq!(conditions.params, vec![Value::Text("day".into()), Value::Integer(1)]);
    }

    /// The streaming path end to end on an in-memory database.
    fn export(format: ExportFormat) -> Result<(u64, String)> {
        let conn = mpwatch_store::Connection::Sqlite(rusqlite::Connection::open_in_memory()?);
        let mut statement = conn.prepare(
            "SELECT 1, 'a,b \"c\"', NULL, 1.5, 1700000000 WHERE ?1 = 1
             UNION ALL SELECT 2, '环球', 'y', NULL, NULL ORDER BY 1",
        )?;
        let columns = [plain("id"), plain("text"), plain("maybe"), plain("real"), local("at")];
        let mut out = Vec::new();
        let rows = write_rows(&mut statement, &[Value::Integer(1)], &columns, format, &shanghai(), &mut out)?;
        Ok((rows, String::from_utf8(out)?))
    }

    #[test]
    fn csv_export_writes_a_header_and_quoted_fields() -> Result<()> {
        let (rows, text) = export(ExportFormat::Csv)?;
        assert_eq!(rows, 2);
        assert_eq!(text, "id,text,maybe,real,at\n1,\"a,b \"\"c\"\"\",,1.5,2023-11-15 06:13:20\n2,环球,y,,\n");
        Ok(())
    }

    #[test]
    fn jsonl_export_writes_one_object_per_line_in_column_order() -> Result<()> {
        let (rows, text) = export(ExportFormat::Jsonl)?;
        assert_eq!(rows, 2);
        assert_eq!(
            text,
            "{\"id\":1,\"text\":\"a,b \\\"c\\\"\",\"maybe\":null,\"real\":1.5,\"at\":\"2023-11-15 06:13:20\"}\n\
             {\"id\":2,\"text\":\"环球\",\"maybe\":\"y\",\"real\":null,\"at\":null}\n"
        );
        for line in text.lines() {
            let _: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)?;
        }
        Ok(())
    }
}
