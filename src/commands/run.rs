//! `mpwatch run`: the service (usually under systemd; see deploy/README.md).

use std::sync::Arc;

use anyhow::{Context as _, Result};
use mpwatch_core::time::SystemClock;
use mpwatch_service::notify::Notifier;
use mpwatch_service::{Control, ServiceSetup};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::cli::GlobalArgs;
use crate::context::AppContext;

/// Runs the scheduler until SIGTERM or SIGINT; SIGHUP reloads the configuration.
pub fn run(global: &GlobalArgs) -> Result<()> {
    let context = AppContext::load(global)?;
    let secrets = context.load_secrets()?.unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let reload_global = global.clone();
    let setup = ServiceSetup {
        config: context.config.clone(),
        secrets,
        db_path: context.db_path.clone(),
        clock: Arc::new(SystemClock),
        reload: Box::new(move || {
            let context = AppContext::load(&reload_global).map_err(|error| format!("{error:#}"))?;
            let secrets = context.load_secrets().map_err(|error| format!("{error:#}"))?.unwrap_or_default();
            Ok((context.config, secrets))
        }),
    };
    let result = runtime.block_on(async {
        let (sender, receiver) = mpsc::channel(8);
        forward_signals(sender)?;
        // `[serve] listen`: feeds and the dashboard in the same process, stopped with it.
        let stop_serving = tokio_util::sync::CancellationToken::new();
        let server = crate::commands::serve::spawn_beside_service(&context, stop_serving.clone())?;
        let result = mpwatch_service::run(setup, receiver, Notifier::from_env()).await.map_err(anyhow::Error::from);
        stop_serving.cancel();
        if let Some(server) = server {
            let _ = server.await;
        }
        result
    });
    // A blocking job (an index update) that outlived the stop timeout is not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// SIGTERM and SIGINT stop the service; SIGHUP reloads it.
fn forward_signals(sender: mpsc::Sender<Control>) -> Result<()> {
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                _ = terminate.recv() => Control::Stop,
                _ = interrupt.recv() => Control::Stop,
                _ = hangup.recv() => Control::Reload,
            };
            if sender.send(message).await.is_err() {
                break;
            }
        }
    });
    Ok(())
}
