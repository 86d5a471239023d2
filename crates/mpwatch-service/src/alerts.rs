//! The alert dispatcher: every alert the crawler or the service raises is recorded in
//! the `alerts` table and, unless the same alert (kind and subject) went out within
//! `[alerts] repeat_after`, POSTed to each webhook of the secrets file, as generic JSON
//! or as the text message of a DingTalk, WeCom or Feishu bot. A failing webhook is
//! logged (never with its URL) and never holds up or breaks a job.

use std::sync::Arc;

use mpwatch_core::config::AlertsConfig;
use mpwatch_core::secrets::{Webhook, WebhookFormat};
use mpwatch_core::time::Clock;
use mpwatch_crawl::alerts::{Alert, Alerts};
use mpwatch_crawl::db::Db;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// Starts the dispatcher; alerts sent to the returned [`Alerts`] are handled in order.
/// The task ends when every sender is dropped.
pub fn spawn(config: AlertsConfig, webhooks: Vec<Webhook>, db: Db, clock: Arc<dyn Clock>) -> (Alerts, JoinHandle<()>) {
    let (sender, mut receiver) = mpsc::unbounded_channel::<Alert>();
    let client = build_client(&config);
    let host = mpwatch_crawl::holder::holder_name().split_once('@').map(|(_, h)| h.to_string()).unwrap_or_default();
    let task = tokio::spawn(async move {
        while let Some(alert) = receiver.recv().await {
            if let Err(error) = dispatch(&config, &webhooks, &db, &client, &host, clock.now(), &alert).await {
                warn!(%error, "cannot record an alert");
            }
        }
    });
    (Alerts::to(sender), task)
}

fn build_client(config: &AlertsConfig) -> Option<reqwest::Client> {
    mpwatch_crawl::fetch::install_tls_provider();
    match reqwest::Client::builder().timeout(config.timeout).build() {
        Ok(client) => Some(client),
        Err(error) => {
            warn!(error = %error.without_url(), "cannot build the webhook client; alerts are only recorded");
            None
        }
    }
}

async fn dispatch(
    config: &AlertsConfig,
    webhooks: &[Webhook],
    db: &Db,
    client: &Option<reqwest::Client>,
    host: &str,
    now: i64,
    alert: &Alert,
) -> Result<(), mpwatch_crawl::CrawlError> {
    let (kind, subject) = (alert.kind.as_str(), alert.subject.clone());
    let repeat_after = config.repeat_after.as_secs() as i64;
    let (k, s, message) = (kind.to_string(), subject.clone(), alert.message.clone());
    let (id, suppressed) = db
        .call(move |store| {
            let last = store.last_alert_sent(&k, &s)?;
            let suppressed = last.is_some_and(|at| now - at < repeat_after);
            let id = store.write(|tx| tx.record_alert(&k, &s, &message, suppressed, now))?;
            Ok((id, suppressed))
        })
        .await?;
    if suppressed {
        debug!(kind, subject, "alert not sent again within repeat_after");
        return Ok(());
    }
    let Some(client) = client else { return Ok(()) };
    let mut delivered = 0;
    for webhook in webhooks.iter().filter(|w| w.kinds.is_empty() || w.kinds.iter().any(|k| k == kind)) {
        let body = body(webhook.format, alert, host, now);
        match deliver(client, webhook, &body).await {
            Ok(()) => delivered += 1,
            Err(reason) => warn!(webhook = %webhook.name, kind, "alert not delivered: {reason}"),
        }
    }
    if delivered > 0 {
        db.call(move |store| store.write(|tx| tx.alert_delivered(id, delivered))).await?;
    }
    Ok(())
}

/// POSTs the body; bots answer 200 with an error code inside, which counts as a failure.
async fn deliver(client: &reqwest::Client, webhook: &Webhook, body: &Value) -> Result<(), String> {
    let response =
        client.post(webhook.url.expose()).json(body).send().await.map_err(|error| error.without_url().to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    // DingTalk and WeCom: {"errcode": 0}; Feishu: {"code": 0} (older: {"StatusCode": 0}).
    for key in ["errcode", "code", "StatusCode"] {
        if let Some(code) = answer.get(key).and_then(Value::as_i64)
            && code != 0
        {
            let message = answer.get("errmsg").or_else(|| answer.get("msg")).and_then(Value::as_str).unwrap_or("");
            return Err(format!("{key} {code} {message}").trim().to_string());
        }
    }
    Ok(())
}

/// The body of an alert in a webhook's format.
pub fn body(format: WebhookFormat, alert: &Alert, host: &str, at: i64) -> Value {
    let when = jiff::Timestamp::from_second(at).map(|t| t.to_string()).unwrap_or_default();
    let text = format!("[mpwatch on {host}] {}: {}", alert.kind.as_str(), alert.message);
    match format {
        WebhookFormat::Json => json!({
            "kind": alert.kind.as_str(),
            "subject": alert.subject,
            "message": alert.message,
            "at": when,
            "host": host,
        }),
        WebhookFormat::Dingtalk | WebhookFormat::Wecom => json!({ "msgtype": "text", "text": { "content": text } }),
        WebhookFormat::Feishu => json!({ "msg_type": "text", "content": { "text": text } }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpwatch_crawl::alerts::AlertKind;

    #[test]
    fn bodies_in_each_format() {
        let alert = Alert {
            kind: AlertKind::CredentialExpired,
            subject: "phone-1".into(),
            message: "client credential set phone-1 expired".into(),
        };
        let json = body(WebhookFormat::Json, &alert, "box", 1_795_845_790);
        assert_eq!(json["kind"], "credential_expired");
        assert_eq!(json["subject"], "phone-1");
        assert_eq!(json["at"], "2026-11-28T06:03:10Z");
        let ding = body(WebhookFormat::Dingtalk, &alert, "box", 0);
        assert_eq!(ding["msgtype"], "text");
        assert_eq!(
            ding["text"]["content"],
            "[mpwatch on box] credential_expired: client credential set phone-1 expired"
        );
        assert_eq!(body(WebhookFormat::Wecom, &alert, "box", 0), ding);
        let feishu = body(WebhookFormat::Feishu, &alert, "box", 0);
        assert_eq!(feishu["msg_type"], "text");
        assert_eq!(feishu["content"]["text"], ding["text"]["content"]);
    }
}
