//! `mpwatch db path | migrate | stats | checksums | copy`: the commands that also run on
//! PostgreSQL (a `postgres://` database).

use anyhow::Result;
use mpwatch_pg::copy::{Endpoint, TableReport};

use crate::cli::DbCommand;
use crate::context::AppContext;

/// Runs a `db` subcommand.
pub fn run(context: &AppContext, command: &DbCommand) -> Result<()> {
    let busy_timeout = context.config.store.busy_timeout;
    match command {
        DbCommand::Path => println!("{}", context.database_display()),
        DbCommand::Migrate { adopt } => {
            if *adopt && context.postgres_url().is_some() {
                anyhow::bail!(
                    "--adopt is for SQLite files; on PostgreSQL, give mpwatch a database or schema of its own"
                );
            }
            let store = context.open_store_with(true, *adopt)?;
            println!("{}: schema version {}", store.path().display(), store.schema_version()?);
        }
        DbCommand::Stats { json } => stats(context, *json)?,
        DbCommand::Checksums { json } => {
            let database = Endpoint::parse(&context.db_path.to_string_lossy());
            let tables = mpwatch_pg::copy::checksums(&database, busy_timeout)?;
            print_tables(&database.to_string(), &tables, *json)?;
        }
        DbCommand::Copy { from, to, json } => {
            for database in [from, to] {
                mpwatch_store::sql::check_database_setting(database).map_err(anyhow::Error::msg)?;
            }
            let (from, to) = (Endpoint::parse(from), Endpoint::parse(to));
            let report = mpwatch_pg::copy::copy(&from, &to, busy_timeout)?;
            print_tables(&to.to_string(), &report.tables, *json)?;
            if !*json {
                let rows: u64 = report.tables.iter().filter(|table| !table.compared_only).map(|table| table.rows).sum();
                println!(
                    "copied {rows} rows of {} tables from {from} to {to}: every table has the same rows and checksum on both sides",
                    report.tables.iter().filter(|table| !table.compared_only).count()
                );
            }
        }
    }
    Ok(())
}

fn stats(context: &AppContext, json: bool) -> Result<()> {
    let stats = context.open_store_read_only()?.stats()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        println!("database: {}", stats.path);
        println!("schema version: {}", stats.schema_version);
        if context.postgres_url().is_some() {
            println!("database size: {} bytes", stats.file_bytes);
        } else {
            println!("file size: {} bytes (+ {} bytes write-ahead log)", stats.file_bytes, stats.wal_bytes);
        }
        for (table, rows) in &stats.tables {
            println!("{table:<20} {rows:>10}");
        }
    }
    Ok(())
}

fn print_tables(database: &str, tables: &[TableReport], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "database": database, "tables": tables }))?);
        return Ok(());
    }
    for table in tables {
        let note = if table.compared_only { "  (made by the migrations; compared, not copied)" } else { "" };
        println!("{:<20} {:>10}  {}{note}", table.table, table.rows, table.checksum);
    }
    Ok(())
}
