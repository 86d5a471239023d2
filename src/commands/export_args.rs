//! The command line of `mpwatch export`, as clap definitions (kept beside the command;
//! `cli.rs` names [`ExportArgs`] in its `Command` enum).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::cli::ReportPeriod;

/// `mpwatch export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to export.
    #[command(subcommand)]
    pub what: ExportWhat,
}

/// What `mpwatch export` writes.
#[derive(Debug, Subcommand)]
pub enum ExportWhat {
    /// Articles with their latest counts, one row each (no body text: see `export
    /// markdown`).
    Articles(ExportTableArgs),
    /// Every count snapshot, one row each, by article and time.
    Snapshots(ExportTableArgs),
    /// Stored rankings (computed by `mpwatch index`), one row per account, period and
    /// index.
    Rankings(ExportRankingsArgs),
    /// One Markdown file per article, with YAML front matter (title, account, URL,
    /// publish time, counts) and the body; running it again overwrites the files.
    Markdown(ExportMarkdownArgs),
}

/// File formats of the table exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Comma-separated values with a header row; NULL is an empty field.
    Csv,
    /// JSON Lines: one object per row, keys in column order; NULL is null.
    Jsonl,
}

/// Which articles (and their snapshots) an export covers.
#[derive(Debug, Args)]
pub struct ExportFilterArgs {
    /// Only this account (id, biz, alias, name; repeatable).
    #[arg(long = "account", value_name = "ACCOUNT")]
    pub accounts: Vec<String>,
    /// Only accounts in this group.
    #[arg(long)]
    pub group: Option<String>,
    /// From this day on (YYYY-MM-DD in the configured time zone): articles by
    /// publication time, snapshots by observation time.
    #[arg(long, value_parser = date_arg)]
    pub since: Option<jiff::civil::Date>,
    /// Up to and including this day (YYYY-MM-DD in the configured time zone).
    #[arg(long, value_parser = date_arg)]
    pub until: Option<jiff::civil::Date>,
}

/// Where and how a table export is written.
#[derive(Debug, Args)]
pub struct ExportOutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Write here instead of standard output (`-`: standard output). The file appears
    /// complete or not at all: an interrupted export leaves an existing file as it was.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `mpwatch export articles` and `mpwatch export snapshots`.
#[derive(Debug, Args)]
pub struct ExportTableArgs {
    /// Which rows.
    #[command(flatten)]
    pub filter: ExportFilterArgs,
    /// Format and destination.
    #[command(flatten)]
    pub target: ExportOutputArgs,
}

/// `mpwatch export rankings`.
#[derive(Debug, Args)]
pub struct ExportRankingsArgs {
    /// Period kind.
    #[arg(long, value_enum, default_value_t = ReportPeriod::Day)]
    pub period: ReportPeriod,
    /// Index to export, or `all`.
    #[arg(long, default_value = "wci-v14.2", value_parser = ["wci-v11", "wci-v13", "wci-v14.2", "wci-v14.2-noshare", "nri", "all"])]
    pub index: String,
    /// Only accounts in this group.
    #[arg(long)]
    pub group: Option<String>,
    /// Only periods starting on or after this day (YYYY-MM-DD in the configured time
    /// zone).
    #[arg(long, value_parser = date_arg)]
    pub since: Option<jiff::civil::Date>,
    /// Only periods starting on or before this day.
    #[arg(long, value_parser = date_arg)]
    pub until: Option<jiff::civil::Date>,
    /// Format and destination.
    #[command(flatten)]
    pub target: ExportOutputArgs,
}

/// `mpwatch export markdown`.
#[derive(Debug, Args)]
pub struct ExportMarkdownArgs {
    /// Which articles.
    #[command(flatten)]
    pub filter: ExportFilterArgs,
    /// Directory for the files (created if missing); each is named
    /// `YYYY-MM-DD-ACCOUNTID-ARTICLEID.md`.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

/// A `YYYY-MM-DD` date, checked when the command line is read (a bad date is a usage
/// error, exit 2, as in the other commands).
fn date_arg(text: &str) -> Result<jiff::civil::Date, String> {
    text.parse::<jiff::civil::Date>().map_err(|_| format!("`{text}` is not a date (YYYY-MM-DD)"))
}
