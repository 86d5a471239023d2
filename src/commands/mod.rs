//! One module per command group; `run` dispatches.

mod account;
mod articles;
mod chart;
mod config;
mod crawl;
mod db;
mod demo;
mod export;
pub mod export_args;
mod index;
mod init;
mod parse;
mod run;
mod serve;
mod sim;
mod status;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::context::AppContext;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        // init writes the config, so it must not require one to exist.
        Command::Init(args) => init::run(&cli.global, &args),
        Command::Config(command) => config::run(&AppContext::load(&cli.global)?, &command),
        Command::Account(command) => account::run(&AppContext::load(&cli.global)?, command),
        Command::Db(command) => db::run(&AppContext::load(&cli.global)?, &command),
        // parse is pure: it needs neither config nor database.
        Command::Parse(args) => parse::run(&args),
        Command::Sim(args) => sim::run(&args),
        Command::Crawl(args) => crawl::run(&AppContext::load(&cli.global)?, &args),
        Command::Run => run::run(&cli.global),
        // The demo brings its own configuration and database.
        Command::Demo(args) => demo::run(&cli.global, &args),
        Command::Status { json } => status::run(&AppContext::load(&cli.global)?, json),
        Command::Articles(args) => articles::run(&AppContext::load(&cli.global)?, &args),
        Command::Index(args) => index::run(&cli.global, &args),
        Command::Report(args) => index::report(&AppContext::load(&cli.global)?, &args),
        Command::Chart(args) => chart::run(&AppContext::load(&cli.global)?, &args),
        Command::Export(args) => export::run(&AppContext::load(&cli.global)?, &args),
        Command::Serve(args) => serve::run(&AppContext::load(&cli.global)?, &args),
        Command::Reparse => {
            let context = AppContext::load(&cli.global)?;
            let mut store = context.open_store()?;
            let summary = mpwatch_crawl::reparse::reparse(&mut store, context.now())?;
            println!(
                "reparsed {} archived pages: {} articles updated, {} unusable; {} added to the search index",
                summary.pages, summary.updated, summary.unusable, summary.indexed_for_search
            );
            Ok(())
        }
    }
}
