//! A hostile simulator of WeChat's endpoints, served on loopback.
//!
//! No machine that builds or tests mpwatch reaches WeChat, and the real endpoints need
//! credentials, throttle, expire and change. The simulator reproduces their shapes and
//! their hostility so that everything the crawler does can be proven against it:
//!
//! - [`world`]: a deterministic world of accounts and articles generated on demand
//!   from a seed (nothing stored), with counts that grow along a saturating curve.
//! - [`render`]: pages in the real 2025 (and 2018) structure, and WeChat's message pages.
//! - [`scenario`]: quotas, credential lifetime, backend behaviour, injected faults.
//! - [`server`]: the endpoints, the feed host, the admin API under `/__sim/`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = mpwatch_sim::start(mpwatch_sim::SimConfig { page_bytes: 50_000, ..Default::default() }).await?;
//! let credential = sim.state().issue_credential(None);
//! println!("WeChat at {}, feeds at {}, key {}", sim.base_url(), sim.feed_base_url(), credential.key);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod feeds;
pub mod render;
pub mod scenario;
pub mod server;
pub mod world;

use std::net::SocketAddr;
use std::sync::Arc;

use mpwatch_core::time::{ClockMode, ControlledClock};

pub use scenario::Scenario;
pub use server::{SimCredential, SimState, TruthArticle};
pub use world::{World, WorldConfig};

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address of the WeChat host (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Address of the feed host.
    pub feed_listen: SocketAddr,
    /// Everything in the world derives from it.
    pub seed: u64,
    /// Synthetic accounts besides the four publishing-world ones.
    pub synthetic_accounts: usize,
    /// Days of history before the clock's start.
    pub days: i64,
    /// Approximate size of article pages (real 2025 pages: 2-4 MB).
    pub page_bytes: usize,
    /// Share of accounts rendered in the 2018 layout.
    pub legacy_share: f64,
    /// Quotas, faults, credential lifetime.
    pub scenario: Scenario,
    /// The clock (shared with the crawler in tests).
    pub clock: ControlledClock,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            feed_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 42,
            synthetic_accounts: 50,
            days: 30,
            page_bytes: 3_000_000,
            legacy_share: 0.2,
            scenario: Scenario::default(),
            clock: ControlledClock::new(ClockMode::Real),
        }
    }
}

/// A running simulator. Dropping it stops the servers.
#[derive(Debug)]
pub struct SimHandle {
    state: Arc<SimState>,
    base_url: String,
    feed_base_url: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:<port>`: where the WeChat endpoints are.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `http://127.0.0.1:<port>`: the feed host.
    pub fn feed_base_url(&self) -> &str {
        &self.feed_base_url
    }

    /// The shared state: world, clock, scenario, credentials, request log.
    pub fn state(&self) -> &Arc<SimState> {
        &self.state
    }

    /// The clock.
    pub fn clock(&self) -> &ControlledClock {
        &self.state.clock
    }

    /// Feed URL of an account (`atom`, `rss` or `json`).
    pub fn feed_url(&self, account: &world::SimAccount, format: &str) -> String {
        format!("{}/feeds/MP_WXS_{}.{format}", self.feed_base_url, account.numeric_id)
    }

    /// Stops the servers.
    pub fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The world's first day for a clock and a history length.
pub fn world_start(clock: &ControlledClock, days: i64) -> i64 {
    let now = clock.now_f64().floor() as i64;
    now - days.max(0) * world::DAY
}

/// Starts the simulator on the current tokio runtime.
pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
    let world = World::new(WorldConfig {
        seed: config.seed,
        synthetic_accounts: config.synthetic_accounts,
        start: world_start(&config.clock, config.days),
        legacy_share: config.legacy_share,
    });
    let state = Arc::new(SimState::new(world, config.clock, config.page_bytes, config.scenario));
    let wechat = tokio::net::TcpListener::bind(config.listen).await?;
    let feeds = tokio::net::TcpListener::bind(config.feed_listen).await?;
    let base_url = format!("http://{}", wechat.local_addr()?);
    let feed_base_url = format!("http://{}", feeds.local_addr()?);
    *state.feed_base.write().unwrap_or_else(std::sync::PoisonError::into_inner) = feed_base_url.clone();
    let mut tasks = Vec::new();
    for (listener, router) in
        [(wechat, server::wechat_router(state.clone())), (feeds, server::feed_router(state.clone()))]
    {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        tasks.push(tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, service).await {
                tracing::error!(%error, "simulator server stopped");
            }
        }));
    }
    Ok(SimHandle { state, base_url, feed_base_url, tasks })
}
