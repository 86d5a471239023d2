//! `mpwatch db path | migrate | stats`.

use anyhow::Result;

use crate::cli::DbCommand;
use crate::context::AppContext;

/// Runs a `db` subcommand.
pub fn run(context: &AppContext, command: &DbCommand) -> Result<()> {
    match command {
        DbCommand::Path => println!("{}", context.db_path.display()),
        DbCommand::Migrate { adopt } => {
            let store = context.open_store_with(true, *adopt)?;
            println!("{}: schema version {}", store.path().display(), store.schema_version()?);
        }
        DbCommand::Stats { json } => {
            let stats = context.open_store_read_only()?.stats()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                println!("database: {}", stats.path);
                println!("schema version: {}", stats.schema_version);
                println!("file size: {} bytes (+ {} bytes write-ahead log)", stats.file_bytes, stats.wal_bytes);
                for (table, rows) in &stats.tables {
                    println!("{table:<20} {rows:>10}");
                }
            }
        }
    }
    Ok(())
}
