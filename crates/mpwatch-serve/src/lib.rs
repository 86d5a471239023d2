//! `mpwatch serve`: a read-only web server over the database: feeds of the tracked
//! accounts' articles with their latest counts (Atom, RSS, JSON Feed, and OPML of them
//! all), and a server-rendered dashboard (rankings, accounts, articles, search, status),
//! every page also as JSON.
//!
//! It never writes: every request reads through a read-only connection
//! ([`reader::Readers`]). It listens on loopback unless told otherwise; beyond loopback it
//! needs an access token ([`guard`]), which every request then carries.

pub mod error;
pub mod feed;
pub mod guard;
pub mod pages;
pub mod reader;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use mpwatch_core::config::Config;
use mpwatch_core::secrets::Secret;
use mpwatch_index::compute::Rules;
use tokio::net::TcpListener;

pub use error::ServeError;

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The database (opened read-only).
    pub db_path: PathBuf,
    /// The configuration (time zone, index rules, jobs for the status page, `[serve]`).
    pub config: Config,
    /// The access token (`[serve] token` in the secrets file).
    pub token: Option<Secret>,
}

/// What every request handler shares.
#[derive(Debug)]
pub struct AppState {
    /// Read-only connections.
    pub readers: reader::Readers,
    /// The configuration.
    pub config: Config,
    /// Index rules from the configuration.
    pub rules: Rules,
    /// Where readers reach the server (no trailing slash).
    pub base_url: String,
    /// The database's path (the status page shows it).
    pub db_path: PathBuf,
}

/// Shared state.
pub type SharedState = Arc<AppState>;

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    app: Router,
}

impl Server {
    /// Checks the options, opens the database read-only and binds the address. Serving
    /// beyond loopback (listening on another address, or behind a proxy at `base_url`)
    /// without a token is refused, and so is a token shorter than
    /// [`guard::MIN_TOKEN_CHARS`].
    pub async fn bind(options: ServeOptions) -> Result<Server, ServeError> {
        let public = !options.listen.ip().is_loopback()
            || options.config.serve.base_url.as_ref().is_some_and(|url| !is_loopback_url(url));
        if public && options.token.is_none() {
            return Err(ServeError::TokenRequired { listen: options.listen });
        }
        if let Some(token) = &options.token {
            guard::check_token_strength(token.expose())?;
        }
        let readers = reader::Readers::open(&options.db_path, options.config.store.busy_timeout)?;
        let rules = Rules::from_config(&options.config)
            .map_err(|_| ServeError::Config(format!("unknown time zone {}", options.config.timezone)))?;
        let listener = TcpListener::bind(options.listen)
            .await
            .map_err(|source| ServeError::Listen { address: options.listen, source })?;
        let address = listener.local_addr().map_err(|source| ServeError::Listen { address: options.listen, source })?;
        let base_url = match &options.config.serve.base_url {
            Some(url) => url.as_str().trim_end_matches('/').to_string(),
            None => format!("http://{address}"),
        };
        let state = Arc::new(AppState {
            readers,
            rules,
            base_url,
            db_path: options.db_path.clone(),
            config: options.config.clone(),
        });
        let secure = options.config.serve.base_url.as_ref().is_some_and(|url| url.scheme() == "https");
        let guard = guard::Guard::new(options.token.clone(), options.config.serve.requests_per_minute, secure);
        Ok(Server { listener, app: router(state, guard) })
    }

    /// The address it listens on (the port, when 0 was asked for).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener.local_addr().map_err(|source| ServeError::Listen { address: ([0, 0, 0, 0], 0).into(), source })
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let address = self.local_addr()?;
        tracing::info!(%address, "serving feeds and the dashboard");
        axum::serve(self.listener, self.app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| ServeError::Listen { address, source })
    }
}

/// Does `url` name this machine (a proxy on loopback is not a public address)?
fn is_loopback_url(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Every route. Only GET (and HEAD) exist: there is no write endpoint.
pub fn router(state: SharedState, guard: guard::Guard) -> Router {
    let routes = Router::new()
        .route("/", get(pages::home))
        .route("/assets/style.css", get(pages::stylesheet))
        .route("/rankings", get(pages::rankings::page))
        .route("/rankings.json", get(pages::rankings::json))
        .route("/accounts", get(pages::account::list))
        .route("/accounts.json", get(pages::account::list_json))
        .route("/account/{id}", get(pages::account::page))
        .route("/account/{id}/chart.svg", get(pages::account::chart))
        .route("/article/{id}", get(pages::article::page))
        .route("/article/{id}/growth.svg", get(pages::article::growth))
        .route("/search", get(pages::search::page))
        .route("/search.json", get(pages::search::json))
        .route("/status", get(pages::status::page))
        .route("/status.json", get(pages::status::json))
        .route("/feeds.opml", get(feed::opml))
        .route("/feeds/{file}", get(feed::all))
        .route("/feeds/account/{file}", get(feed::account))
        .route("/feeds/group/{file}", get(feed::group))
        .fallback(pages::not_found)
        .with_state(state);
    guard.apply(routes)
}
