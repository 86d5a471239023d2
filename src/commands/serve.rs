//! `mpwatch serve`: feeds and the dashboard (`mpwatch-serve`), read-only, until SIGTERM
//! or SIGINT. `mpwatch run` starts the same server when `[serve] listen` is set
//! ([`spawn_beside_service`]).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result};
use mpwatch_core::config::DEFAULT_SERVE_LISTEN;
use mpwatch_serve::{ServeError, ServeOptions, Server};
use mpwatch_store::StoreError;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::context::AppContext;

/// The server's options from the context.
fn options(context: &AppContext, listen: SocketAddr) -> Result<ServeOptions> {
    let secrets = context.load_secrets()?.unwrap_or_default();
    Ok(ServeOptions {
        listen,
        db_path: context.db_path.clone(),
        config: context.config.clone(),
        token: secrets.serve.map(|serve| serve.token),
    })
}

/// Serves until SIGTERM or SIGINT.
pub fn run(context: &AppContext, args: &ServeArgs) -> Result<()> {
    let default: SocketAddr = DEFAULT_SERVE_LISTEN.parse().context("the default address")?;
    let listen = args.listen.or(context.config.serve.listen).unwrap_or(default);
    let options = options(context, listen)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = Server::bind(options).await?;
        let address = server.local_addr()?;
        eprintln!("serving http://{address}/ (feeds: http://{address}/feeds.opml); Ctrl-C stops");
        let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        let stop = async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        };
        server.run(stop).await?;
        Ok(())
    })
}

/// `mpwatch run` with `[serve] listen`: serves beside the service until `stop` is
/// cancelled. The service creates and migrates the database as it starts, so binding
/// waits (up to a minute) for a database this build can read.
pub fn spawn_beside_service(
    context: &AppContext,
    stop: CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(listen) = context.config.serve.listen else { return Ok(None) };
    let options = options(context, listen)?;
    Ok(Some(tokio::spawn(async move {
        let mut waited = Duration::ZERO;
        let server = loop {
            match Server::bind(options.clone()).await {
                Ok(server) => break server,
                Err(ServeError::Store(StoreError::Missing { .. } | StoreError::Outdated { .. }))
                    if waited < Duration::from_secs(60) =>
                {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    waited += Duration::from_millis(250);
                }
                Err(error) => {
                    tracing::error!("not serving feeds and the dashboard: {error}");
                    return;
                }
            }
        };
        if let Err(error) = server.run(async move { stop.cancelled().await }).await {
            tracing::error!("feeds and the dashboard stopped: {error}");
        }
    })))
}
