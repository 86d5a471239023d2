//! The `mpwatch` command: argument parsing, logging and the glue between the library
//! crates. Errors reach the user as one line, `error: ...`, with exit code 1; usage
//! errors exit 2.

mod cli;
mod commands;
mod context;
mod files;
mod opml_io;
mod table;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, LogFormat};

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
    init_logging(&cli.global);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` joins the context chain with ": "; keep it to one line.
            let message = format!("{error:#}").replace('\n', " ");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `mpwatch account list | head` should end quietly like any Unix tool, not panic on
/// a closed pipe: restore the default SIGPIPE action Rust's runtime ignores.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_logging(global: &cli::GlobalArgs) {
    use tracing_subscriber::EnvFilter;
    let default_level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match global.log_format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}
