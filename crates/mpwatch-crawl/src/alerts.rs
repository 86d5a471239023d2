//! Alerts the crawler raises (a credential expired, none left, a source failing run
//! after run, a cooldown entered). They are handed to whoever listens (the service's
//! dispatcher records them and sends webhooks); without a listener they are only logged.

use tokio::sync::mpsc;
use tracing::warn;

use crate::credentials::CredentialPool;
use crate::db::Db;
use crate::error::CrawlError;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// A client credential set answered "no session".
    CredentialExpired,
    /// No usable client credential set is left.
    NoCredentials,
    /// A source failed several runs in a row.
    SourceFailing,
    /// A scheduled job failed.
    JobFailed,
    /// A host or credential entered an anti-crawl cooldown.
    Cooldown,
}

impl AlertKind {
    /// The name in the config, the database and webhook bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::CredentialExpired => "credential_expired",
            AlertKind::NoCredentials => "no_credentials",
            AlertKind::SourceFailing => "source_failing",
            AlertKind::JobFailed => "job_failed",
            AlertKind::Cooldown => "cooldown",
        }
    }
}

/// One alert. No field ever holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// What it is about.
    pub kind: AlertKind,
    /// Which credential, source, job or host (repeats are counted per kind and subject).
    pub subject: String,
    /// One line for people.
    pub message: String,
}

/// Where alerts go: a channel to the dispatcher, or nowhere.
#[derive(Debug, Clone, Default)]
pub struct Alerts(Option<mpsc::UnboundedSender<Alert>>);

impl Alerts {
    /// Alerts sent to `sender`.
    pub fn to(sender: mpsc::UnboundedSender<Alert>) -> Alerts {
        Alerts(Some(sender))
    }

    /// Raises an alert (logged as a warning either way).
    pub fn raise(&self, kind: AlertKind, subject: &str, message: String) {
        warn!(event = kind.as_str(), subject, "{message}");
        if let Some(sender) = &self.0 {
            // A dispatcher that is gone (shutting down) is no reason to stop crawling.
            let _ = sender.send(Alert { kind, subject: subject.to_string(), message });
        }
    }
}

/// Marks a credential set expired (once), records it in `credential_states`, and
/// raises `credential_expired`, and `no_credentials` when it was the last one.
pub(crate) async fn expire_credential(
    pool: &CredentialPool,
    db: &Db,
    alerts: &Alerts,
    name: &str,
    now: i64,
) -> Result<(), CrawlError> {
    let Some(left) = pool.mark_expired(name) else { return Ok(()) };
    let label = name.to_string();
    db.write_now(move |tx| tx.set_credential_state(&label, "expired", now)).await?;
    alerts.raise(
        AlertKind::CredentialExpired,
        name,
        format!("client credential set {name} expired (no session); {left} usable set(s) left; add a fresh set to the secrets file"),
    );
    if left == 0 {
        alerts.raise(
            AlertKind::NoCredentials,
            "client",
            "no usable client credential set is left: counts and profile_ext lists wait until a fresh set is added"
                .into(),
        );
    }
    Ok(())
}
