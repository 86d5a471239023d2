//! `mpwatch-bench`: the data side of mpwatch's benchmarks (`bench/run.sh`).
//!
//! `mpwatch-bench history --db FILE --until T` writes a synthetic history of tracked
//! accounts through the store API, as the crawler would have stored it: articles, then
//! their count snapshots in the order they would have been observed, committed in
//! batches. Run it again with a later `--until` and it adds only what happened in
//! between (a day of new data, for the incremental index benchmark). It prints one JSON
//! line with what it wrote and the snapshot ingest rate.
#![deny(missing_docs)]

mod history;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "Data for mpwatch's benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write (or extend) a synthetic history through the store API.
    History(history::HistoryArgs),
}

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    match Cli::parse().command {
        Command::History(args) => {
            let summary = history::write(&args)?;
            println!("{}", serde_json::to_string(&summary).context("printing the summary")?);
            Ok(())
        }
    }
}
