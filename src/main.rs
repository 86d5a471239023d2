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

/// An exit code for a command that has already told the user what happened (a crawl
/// stopped by Ctrl-C exits 130 after printing its summary).
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands that talk to the network keep SIGPIPE ignored: a peer that drops a
    // connection mid-write must be an error on that connection, not the end of the
    // process (a server writing with writev gets no MSG_NOSIGNAL).
    if !matches!(
        cli.command,
        cli::Command::Sim(_)
            | cli::Command::Run
            | cli::Command::Crawl(_)
            | cli::Command::Demo(_)
            | cli::Command::Serve(_)
    ) {
        restore_sigpipe();
    }
    init_logging(&cli.global, &cli.command);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // A command that already said what happened and only sets the exit code.
        Err(error) if error.downcast_ref::<Exit>().is_some() => {
            ExitCode::from(error.downcast_ref::<Exit>().map_or(1, |exit| exit.0))
        }
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// Longest error line shown (a damaged database can put pages of SQL into an error).
const MAX_ERROR_CHARS: usize = 300;

/// The error and its causes on one line, each cause once (a message that already
/// includes its cause is not followed by it again), cut at [`MAX_ERROR_CHARS`].
fn one_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() || parts.last().is_some_and(|last| last.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    let line = parts.join(": ");
    match line.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
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

/// Plain lines when stderr is not a terminal (journald); the service logs one line per
/// job run at the default level.
fn init_logging(global: &cli::GlobalArgs, command: &cli::Command) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let default_level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) if matches!(command, cli::Command::Run) => "warn,mpwatch_service=info,mpwatch_serve=info",
        (false, 0) if matches!(command, cli::Command::Serve(_)) => "warn,mpwatch_serve=info",
        // The demo tells what happens in its own words; the service's warnings about
        // what it does on purpose (expiry, skipped fires at this speed) would bury them.
        (false, 0) if matches!(command, cli::Command::Demo(_)) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    // The PostgreSQL client logs every statement and poll at debug and trace: only its
    // warnings unless RUST_LOG asks for more.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},tokio_postgres=warn,postgres=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match global.log_format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}
