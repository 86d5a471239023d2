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
    println!("database: {}", context.database_display());
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
    print_jobs(config, jiff::Timestamp::now())?;
    let secrets = context.load_secrets()?;
    let token = secrets.as_ref().and_then(|s| s.serve.as_ref()).map(|serve| serve.token.expose());
    println!(
        "serve: {}; token {}",
        match config.serve.listen {
            Some(listen) => format!("{listen} (also served by `mpwatch run`)"),
            None => format!(
                "{} when `mpwatch serve` runs ([serve] listen not set)",
                mpwatch_core::config::DEFAULT_SERVE_LISTEN
            ),
        },
        match token {
            None => "none (loopback only)".to_string(),
            Some(token) => match mpwatch_serve::guard::check_token_strength(token) {
                Ok(()) => "set".to_string(),
                Err(error) => format!("set but refused: {error}"),
            },
        }
    );
    match (&config.secrets_file, secrets) {
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

/// Each job of `mpwatch run` with its next three fire times in its time zone.
fn print_jobs(config: &mpwatch_core::config::Config, now: jiff::Timestamp) -> Result<()> {
    let source = if config.schedule.is_empty() { " (defaults: no [[schedule]] in the config)" } else { "" };
    println!("service jobs{source}:");
    for entry in config.jobs() {
        let zone_name = config.job_timezone(&entry);
        let schedule = mpwatch_core::schedule::CronSchedule::parse(&entry.cron, zone_name)?;
        let zone = mpwatch_core::schedule::time_zone(zone_name)?;
        let next: Vec<String> = schedule
            .fires_after(now)
            .take(3)
            .map(|t| t.to_zoned_datetime(zone.clone()).strftime("%Y-%m-%d %H:%M:%S").to_string())
            .collect();
        let filter = match (&entry.account, &entry.group) {
            (Some(account), _) => format!(", account {account}"),
            (_, Some(group)) => format!(", group {group}"),
            _ => String::new(),
        };
        let jitter = if entry.jitter.is_zero() {
            String::new()
        } else {
            format!(", jitter up to {}", humantime::format_duration(entry.jitter))
        };
        println!(
            "  {} ({}{filter}{jitter}): \"{}\" {zone_name}; next {}",
            entry.name,
            entry.job.as_str(),
            entry.cron,
            if next.is_empty() { "never".to_string() } else { next.join(", ") }
        );
    }
    Ok(())
}
