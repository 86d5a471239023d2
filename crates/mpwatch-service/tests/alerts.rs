//! Alerts to webhooks against a local HTTP receiver: each format, the kinds filter,
//! the repeat limit, and receivers that fail or are down.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::routing::post;
use mpwatch_core::config::AlertsConfig;
use mpwatch_core::secrets::{Secret, Webhook, WebhookFormat};
use mpwatch_core::time::{ClockMode, ControlledClock};
use mpwatch_crawl::alerts::AlertKind;
use mpwatch_crawl::db::Db;
use mpwatch_store::{Store, StoreOptions};
use serde_json::{Value, json};

type Received = Arc<Mutex<Vec<(String, Value)>>>;

async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook/{name}",
            post(|State(log): State<Received>, Path(name): Path<String>, Json(body): Json<Value>| async move {
                log.lock().unwrap().push((name.clone(), body));
                match name.as_str() {
                    "broken" => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, Json(json!({}))),
                    "refusing-bot" => (
                        axum::http::StatusCode::OK,
                        Json(json!({"errcode": 310000, "errmsg": "keywords not in content"})),
                    ),
                    _ => (axum::http::StatusCode::OK, Json(json!({"errcode": 0, "errmsg": "ok"}))),
                }
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/hook"), received)
}

fn webhook(name: &str, url: String, format: WebhookFormat, kinds: &[&str]) -> Webhook {
    Webhook { name: name.into(), url: Secret::new(url), format, kinds: kinds.iter().map(|k| k.to_string()).collect() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_each_webhook_in_its_format_once_per_repeat_interval() {
    let (base, received) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("m.db");
    let db = Db::new(Store::open(&db_path, &StoreOptions::default()).unwrap());
    let clock = ControlledClock::new(ClockMode::Fixed { at: 1_795_845_790.0 });
    let webhooks = vec![
        webhook("all-json", format!("{base}/json?access_token=SECRET-TOKEN"), WebhookFormat::Json, &[]),
        webhook("ding", format!("{base}/ding"), WebhookFormat::Dingtalk, &["credential_expired"]),
        webhook("feishu", format!("{base}/feishu"), WebhookFormat::Feishu, &["job_failed"]),
        webhook("broken", format!("{base}/broken"), WebhookFormat::Json, &[]),
        webhook("refusing-bot", format!("{base}/refusing-bot"), WebhookFormat::Wecom, &[]),
        // Nothing listens on port 1.
        webhook("down", "http://127.0.0.1:1/hook".into(), WebhookFormat::Json, &[]),
    ];
    let config =
        AlertsConfig { repeat_after: Duration::from_secs(3600), source_failures: 3, timeout: Duration::from_secs(5) };
    let (alerts, task) = mpwatch_service::alerts::spawn(config, webhooks, db.clone(), Arc::new(clock.clone()));
    alerts.raise(AlertKind::Cooldown, "host:mp.weixin.qq.com", "verification page: host rests for 900 s".into());
    alerts.raise(AlertKind::Cooldown, "host:mp.weixin.qq.com", "verification page again".into());
    alerts.raise(AlertKind::CredentialExpired, "phone-1", "client credential set phone-1 expired".into());
    // The dispatcher stamps alerts when it handles them: wait for the first three.
    let reader = Store::open(&db_path, &StoreOptions::default()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while reader.alerts_since(0).unwrap().len() < 3 {
        assert!(std::time::Instant::now() < deadline, "alerts were not recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    clock.set(ClockMode::Fixed { at: 1_795_845_790.0 + 3601.0 });
    alerts.raise(AlertKind::Cooldown, "host:mp.weixin.qq.com", "an hour later".into());
    drop(alerts);
    tokio::time::timeout(Duration::from_secs(30), task).await.unwrap().unwrap();

    let received = received.lock().unwrap().clone();
    let to = |name: &str| received.iter().filter(|(n, _)| n == name).map(|(_, body)| body.clone()).collect::<Vec<_>>();
    // The repeat within the hour was not sent; the one after it was.
    let json_bodies = to("json");
    assert_eq!(json_bodies.len(), 3, "{json_bodies:?}");
    assert_eq!(json_bodies[0]["kind"], "cooldown");
    assert_eq!(json_bodies[0]["subject"], "host:mp.weixin.qq.com");
    assert_eq!(json_bodies[1]["kind"], "credential_expired");
    assert_eq!(json_bodies[2]["message"], "an hour later");
    // The kinds filter.
    let ding = to("ding");
    assert_eq!(ding.len(), 1);
    assert_eq!(ding[0]["msgtype"], "text");
    assert!(ding[0]["text"]["content"].as_str().unwrap().contains("phone-1 expired"));
    assert!(to("feishu").is_empty());
    // Failing receivers were tried and did not stop the others.
    assert_eq!(to("broken").len(), 3);
    assert_eq!(to("refusing-bot").len(), 3);
    // No secret in any body.
    assert!(received.iter().all(|(_, body)| !body.to_string().contains("SECRET-TOKEN")));

    let store = Store::open(&db_path, &StoreOptions::default()).unwrap();
    let recorded = store.alerts_since(0).unwrap();
    assert_eq!(recorded.len(), 4);
    let delivered: Vec<(String, bool, i64)> =
        recorded.iter().rev().map(|a| (a.kind.clone(), a.suppressed, a.delivered)).collect();
    assert_eq!(
        delivered,
        vec![
            ("cooldown".into(), false, 1),
            ("cooldown".into(), true, 0),
            ("credential_expired".into(), false, 2),
            ("cooldown".into(), false, 1),
        ]
    );
}
