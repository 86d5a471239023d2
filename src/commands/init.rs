//! `mpwatch init`: a working setup in one directory.

use anyhow::{Context as _, Result};
use mpwatch_store::{Store, StoreOptions};

use crate::cli::{GlobalArgs, InitArgs};

const EXAMPLE_CONFIG: &str = include_str!("../../config/mpwatch.example.toml");
const EXAMPLE_SECRETS: &str = include_str!("../../config/secrets.example.toml");

/// Writes `mpwatch.toml` (the example with `database` and `secrets_file` switched on),
/// an empty `secrets.toml` (mode 0600) and creates the database. Existing files are
/// kept unless `--force` is given for the config.
pub fn run(global: &GlobalArgs, args: &InitArgs) -> Result<()> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config_path = dir.join(mpwatch_core::config::CONFIG_FILE_NAME);
    let secrets_path = dir.join("secrets.toml");
    let db_path = global.db.clone().unwrap_or_else(|| dir.join(mpwatch_core::config::DEFAULT_DATABASE_FILE));
    if db_path.to_str().is_some_and(mpwatch_core::config::is_postgres_url) {
        anyhow::bail!(
            "`mpwatch init` sets up a SQLite file; for PostgreSQL, run `mpwatch init` without --db, set `database = \"postgres://...\"` in mpwatch.toml, then run `mpwatch db migrate`"
        );
    }

    if config_path.exists() && !args.force {
        println!("kept existing {} (use --force to overwrite)", config_path.display());
    } else {
        let config = EXAMPLE_CONFIG
            .replace("# database = \"mpwatch.db\"", "database = \"mpwatch.db\"")
            .replace("# secrets_file = \"secrets.toml\"", "secrets_file = \"secrets.toml\"");
        std::fs::write(&config_path, config).with_context(|| format!("cannot write {}", config_path.display()))?;
        println!("wrote {}", config_path.display());
    }
    if secrets_path.exists() {
        println!("kept existing {}", secrets_path.display());
    } else {
        crate::files::write_private(&secrets_path, EXAMPLE_SECRETS, false)?;
        println!("wrote {} (mode 0600; add credentials here, never in mpwatch.toml)", secrets_path.display());
    }
    let store = Store::open(&db_path, &StoreOptions::default())?;
    println!("database {} ready (schema version {})", db_path.display(), store.schema_version()?);
    println!("next: mpwatch --config {} account add <article URL | biz | alias | --feed URL>", config_path.display());
    Ok(())
}
