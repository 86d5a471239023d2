//! `mpwatch sim`: the simulator as a standalone server.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use mpwatch_core::SourceKind;
use mpwatch_core::time::{ClockMode, ControlledClock};
use mpwatch_sim::{Scenario, SimConfig, SimCredential, SimHandle};
use mpwatch_store::accounts::{NewAccount, NewSource};
use mpwatch_store::{Store, StoreOptions};

use crate::cli::SimArgs;

/// Starts the simulator, prints where it is and a credential set, and serves until
/// interrupted.
pub fn run(args: &SimArgs) -> Result<()> {
    if args.time_scale <= 0.0 || !args.time_scale.is_finite() {
        bail!("--time-scale must be a positive number");
    }
    let scenario = match &args.scenario {
        Some(path) => Scenario::load(path)?,
        None => Scenario::default(),
    };
    let now = mpwatch_core::time::now_unix() as f64;
    let clock = if args.time_scale == 1.0 {
        ControlledClock::new(ClockMode::Real)
    } else {
        ControlledClock::new(ClockMode::Accelerated { at: now, scale: args.time_scale })
    };
    let config = SimConfig {
        listen: args.listen,
        feed_listen: args.feed_listen,
        seed: args.seed,
        synthetic_accounts: args.accounts,
        days: args.days,
        page_bytes: args.page_bytes,
        legacy_share: args.legacy_share,
        scenario,
        clock,
    };
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()
    }
    .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let sim = mpwatch_sim::start(config).await.with_context(|| format!("cannot listen on {}", args.listen))?;
        let credential = sim.state().issue_credential(Some("sim-1".into()));
        println!("WeChat simulator at {}", sim.base_url());
        println!("feeds at {}/feeds/MP_WXS_<id>.atom|rss|json", sim.feed_base_url());
        println!("admin API at {}/__sim/ (clock, scenario, credentials, requests, truth, accounts)", sim.base_url());
        println!(
            "world: seed {}, {} accounts, {} articles, pages ~{} bytes",
            args.seed,
            sim.state().world.accounts().len(),
            sim.state().world.article_count(sim.state().now()),
            args.page_bytes
        );
        println!("credential set (expires in {} simulated seconds):", sim.state().scenario().credential_ttl);
        println!("  uin = {}\n  key = {}\n  pass_ticket = {}\n  appmsg_token = {}\n  cookie = {}", credential.uin, credential.key, credential.pass_ticket, credential.appmsg_token, credential.cookie);
        if let Some(dir) = &args.write_config {
            write_config(dir, &sim, &credential)?;
            println!("wrote {0}/mpwatch.toml, {0}/secrets.toml and {0}/mpwatch.db; try: mpwatch --config {0}/mpwatch.toml account list", dir.display());
        }
        println!("serving; Ctrl-C stops");
        tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")?;
        Ok(())
    })
}

/// Writes a secrets file with the credential set, a database with the world's accounts,
/// and last a config pointing at the simulator with rate limits for a local server.
pub fn write_config(dir: &Path, sim: &SimHandle, credential: &SimCredential) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config = format!(
        r#"# Written by `mpwatch sim --write-config`: mpwatch pointed at the simulator.
database = "mpwatch.db"
secrets_file = "secrets.toml"
timezone = "Asia/Shanghai"

[wechat]
base_url = "{base}"

[http]
connect_timeout = "2s"
read_timeout = "10s"
total_timeout = "30s"

# A local server takes far more than WeChat does; a small world crawls in seconds.
[rate_limits.article_page]
interval = "2ms"
burst = 20
jitter = "0s"

[rate_limits.list_api]
interval = "2ms"
burst = 20
jitter = "0s"

[rate_limits.count_api]
interval = "2ms"
burst = 20
jitter = "0s"

[rate_limits.feed]
interval = "2ms"
burst = 20
jitter = "0s"

[crawl]
concurrency_per_host = 8
cooldown_initial = "5s"
cooldown_max = "1m"
"#,
        base = sim.base_url()
    );
    let quote = |value: &str| toml::Value::String(value.to_string()).to_string();
    let secrets = format!(
        "# Written by `mpwatch sim --write-config`: a simulator credential set.\n[[client]]\nname = {}\nuin = {}\nkey = {}\npass_ticket = {}\nappmsg_token = {}\ncookie = {}\n",
        quote(&credential.name),
        quote(&credential.uin),
        quote(&credential.key),
        quote(&credential.pass_ticket),
        quote(&credential.appmsg_token),
        quote(&credential.cookie)
    );
    crate::files::write_private(&dir.join("secrets.toml"), &secrets, true)?;
    let mut store = Store::open(&dir.join("mpwatch.db"), &StoreOptions::default())?;
    add_world_accounts(&mut store, sim, mpwatch_core::time::now_unix())?;
    // The config comes last, whole (a rename): a script that waits for it finds the
    // database and the secrets ready.
    let partial = dir.join("mpwatch.toml.partial");
    std::fs::write(&partial, config).with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, dir.join("mpwatch.toml"))
        .with_context(|| format!("cannot write {}/mpwatch.toml", dir.display()))
}

/// Adds every account of the simulator's world, with its profile_ext and feed sources,
/// the four publishing-world ones in group `publishers`, the others in `sim`.
pub fn add_world_accounts(store: &mut Store, sim: &SimHandle, now: i64) -> Result<()> {
    store.write(|tx| {
        for account in sim.state().world.accounts() {
            let new = NewAccount {
                biz: Some(account.biz.clone()),
                username: Some(account.username.clone()),
                alias: account.alias.clone(),
                nickname: Some(account.nickname.clone()),
                groups: vec![if account.index < 4 { "publishers".to_string() } else { "sim".to_string() }],
                sources: vec![
                    NewSource { kind: SourceKind::ProfileExt, locator: account.biz.to_string() },
                    NewSource { kind: SourceKind::Feed, locator: sim.feed_url(account, "atom") },
                ],
            };
            tx.add_account(&new, now)?;
        }
        Ok(())
    })?;
    Ok(())
}
