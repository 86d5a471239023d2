//! `mpwatch config check`.

use anyhow::Result;

use crate::cli::ConfigCommand;
use crate::context::AppContext;

/// Validates config and secrets and prints what was found, never a secret value.
pub fn run(context: &AppContext, command: &ConfigCommand) -> Result<()> {
    match command {
        ConfigCommand::Check => check(context),
    }
}

fn check(context: &AppContext) -> Result<()> {
    let config = &context.config;
    match &context.config_path {
        Some(path) => println!("config: {} (valid)", path.display()),
        None => println!(
            "config: none found (searched {}); using defaults",
            mpwatch_core::config::search_directories()
                .iter()
                .map(|dir| dir.join(mpwatch_core::config::CONFIG_FILE_NAME).display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    println!("database: {}", context.db_path.display());
    println!("wechat base URL: {}", config.wechat.base_url);
    println!("timezone: {}", config.timezone);
    let limits = &config.rate_limits;
    for (name, limit) in [
        ("article_page", &limits.article_page),
        ("list_api", &limits.list_api),
        ("count_api", &limits.count_api),
        ("feed", &limits.feed),
    ] {
        println!(
            "rate limit {name}: burst {} then one per {} (+ up to {} jitter)",
            limit.burst,
            humantime::format_duration(limit.interval),
            humantime::format_duration(limit.jitter)
        );
    }
    println!(
        "snapshot ages: {}",
        config
            .crawl
            .snapshot_ages
            .iter()
            .map(|d| humantime::format_duration(*d).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    match (&config.secrets_file, context.load_secrets()?) {
        (Some(path), Some(secrets)) => {
            println!("secrets: {} (permissions ok)", path.display());
            let names: Vec<&str> = secrets.client.iter().map(|c| c.name.as_str()).collect();
            println!(
                "client credential sets: {}{}",
                names.len(),
                if names.is_empty() { String::new() } else { format!(" ({})", names.join(", ")) }
            );
            println!("backend session: {}", if secrets.backend.is_some() { "present" } else { "none" });
        }
        _ => println!("secrets: none configured (feeds and manual URLs only; no counts)"),
    }
    Ok(())
}
