//! `mpwatch init`: a working setup in one directory.

use anyhow::{Context as _, Result};
use mpwatch_store::{Store, StoreOptions};

use crate::cli::{GlobalArgs, InitArgs};

const EXAMPLE_CONFIG: &str = include_str!("../../config/mpwatch.example.toml");
const EXAMPLE_SECRETS: &str = include_str!("../../config/secrets.example.toml");

/// Writes `mpwatch.toml` (the example with `database` and `secrets_file` switched on),
/// an empty `secrets.toml` (mode 0600) and creates the database: a SQLite file, or the
/// schema in the PostgreSQL database `--db` names (the database itself must exist).
/// Existing files are kept unless `--force` is given for the config.
pub fn run(global: &GlobalArgs, args: &InitArgs) -> Result<()> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config_path = dir.join(mpwatch_core::config::CONFIG_FILE_NAME);
    let secrets_path = dir.join("secrets.toml");
    let db_path = global.db.clone().unwrap_or_else(|| dir.join(mpwatch_core::config::DEFAULT_DATABASE_FILE));
    // A PostgreSQL URL goes into the config only without a password: the config is not
    // a secret (the password stays in MPWATCH_DB or --db).
    let postgres = db_path.to_str().filter(|url| mpwatch_core::config::is_postgres_url(url));
    let database_line = match postgres {
        Some(url) if mpwatch_store::sql::redacted(url) != url => None,
        Some(url) => Some(format!("database = {}", toml::Value::String(url.to_string()))),
        None => Some("database = \"mpwatch.db\"".to_string()),
    };

    if config_path.exists() && !args.force {
        println!("kept existing {} (use --force to overwrite)", config_path.display());
    } else {
        let mut config = EXAMPLE_CONFIG.replace("# secrets_file = \"secrets.toml\"", "secrets_file = \"secrets.toml\"");
        if let Some(line) = &database_line {
            config = config.replace("# database = \"mpwatch.db\"", line);
        }
        std::fs::write(&config_path, config).with_context(|| format!("cannot write {}", config_path.display()))?;
        println!("wrote {}", config_path.display());
        if postgres.is_some() && database_line.is_none() {
            println!(
                "the database URL holds a password, so it is not written to {}: give it with MPWATCH_DB (or --db) each time",
                config_path.display()
            );
        }
    }
    if secrets_path.exists() {
        println!("kept existing {}", secrets_path.display());
    } else {
        crate::files::write_private(&secrets_path, EXAMPLE_SECRETS, false)?;
        println!("wrote {} (mode 0600; add credentials here, never in mpwatch.toml)", secrets_path.display());
    }
    let store = Store::open(&db_path, &StoreOptions::default())?;
    println!("database {} ready (schema version {})", store.path().display(), store.schema_version()?);
    println!("next: mpwatch --config {} account add <article URL | biz | alias | --feed URL>", config_path.display());
    Ok(())
}
