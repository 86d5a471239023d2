//! What every command needs: the configuration (found as documented), the database
//! path, and opening the store.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use mpwatch_core::config::{self, Config};
use mpwatch_core::secrets::Secrets;
use mpwatch_store::{Store, StoreOptions};

use crate::cli::GlobalArgs;

/// The resolved configuration of one invocation. (Its `Debug` shows the database
/// without a password.)
pub struct AppContext {
    /// The config file used, if any was found.
    pub config_path: Option<PathBuf>,
    /// The configuration (defaults when no file was found).
    pub config: Config,
    /// The database file (or PostgreSQL URL: see [`AppContext::postgres_url`]).
    pub db_path: PathBuf,
}

impl std::fmt::Debug for AppContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppContext")
            .field("config_path", &self.config_path)
            .field("database", &self.database_display())
            .finish_non_exhaustive()
    }
}

impl AppContext {
    /// Finds and loads the config; an explicit `--config` that does not exist is an error.
    pub fn load(global: &GlobalArgs) -> Result<AppContext> {
        let config_path = config::discover_config(global.config.as_deref());
        let config = match &config_path {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let db_path = config::resolve_database(global.db.as_deref(), &config);
        if let Some(text) = db_path.to_str() {
            mpwatch_store::sql::check_database_setting(text).map_err(anyhow::Error::msg)?;
        }
        Ok(AppContext { config_path, config, db_path })
    }

    /// Opens (creating and migrating) the database.
    pub fn open_store(&self) -> Result<Store> {
        self.open_store_with(true, false)
    }

    /// The PostgreSQL URL, when the database is one (`database = "postgres://..."`).
    pub fn postgres_url(&self) -> Option<&str> {
        self.db_path.to_str().filter(|database| mpwatch_core::config::is_postgres_url(database))
    }

    /// The database as messages show it: the file, or the URL without its password.
    pub fn database_display(&self) -> String {
        match self.postgres_url() {
            Some(url) => mpwatch_pg::redacted(url),
            None => self.db_path.display().to_string(),
        }
    }

    /// Opens (creating if `create`, adding mpwatch's tables to another program's file
    /// if `adopt`) and migrates the database.
    pub fn open_store_with(&self, create: bool, adopt: bool) -> Result<Store> {
        let options = StoreOptions { busy_timeout: self.config.store.busy_timeout, create, adopt };
        Ok(Store::open(&self.db_path, &options)?)
    }

    /// Opens an existing database for a command that only reads: nothing is created,
    /// migrated or changed.
    pub fn open_store_read_only(&self) -> Result<Store> {
        Ok(Store::open_read_only(&self.db_path, self.config.store.busy_timeout)?)
    }

    /// Loads the secrets file named by the config, if any.
    pub fn load_secrets(&self) -> Result<Option<Secrets>> {
        match &self.config.secrets_file {
            Some(path) => Ok(Some(Secrets::load(path)?)),
            None => Ok(None),
        }
    }

    /// Current time in unix seconds.
    pub fn now(&self) -> i64 {
        mpwatch_core::time::now_unix()
    }
}

/// Reads a file or standard input (`-`), naming the file in errors.
pub fn read_input(path: &std::path::Path) -> Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(std::io::stdin(), MAX_INPUT_BYTES), &mut text)
            .context("cannot read standard input")?;
        Ok(text)
    } else {
        mpwatch_core::files::read_text_limited(path, MAX_INPUT_BYTES)
            .with_context(|| format!("cannot read {}", path.display()))
    }
}

/// Largest OPML (or other list) read: a subscription list of thousands of feeds is a
/// few MB.
const MAX_INPUT_BYTES: u64 = 32 * 1024 * 1024;
