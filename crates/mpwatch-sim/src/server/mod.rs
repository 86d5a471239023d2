//! The HTTP side: the simulator's state (world, clock, scenario, credentials, quotas,
//! the request log), the routers, admission (quotas and faults) and how responses are
//! built. The endpoints are in the submodules, one family each.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::StreamExt as _;
use mpwatch_core::time::{ClockMode, ControlledClock};
use mpwatch_core::{ArticleKey, ArticleStatus, Biz, Copyright};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod admin;
mod api;
mod backend;
mod feed;
mod pages;
mod truth;

use admin::*;
use api::*;
use backend::*;
use feed::*;
use pages::*;
use truth::*;
pub use truth::{TruthArticle, truth_at};

use crate::render::{self, Chunks, Fillers, PageContext};
use crate::scenario::{BackendLists, Endpoint, Fault, Scenario, VerificationStyle};
use crate::world::{SimAccount, SimArticle, World, hash, unit};

/// Lock helpers: a poisoned lock still holds consistent data here (every critical
/// section is a few assignments), so keep serving.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A client credential set the simulator issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimCredential {
    /// Id in the request log.
    pub id: u64,
    /// Label.
    pub name: String,
    /// `uin`.
    pub uin: String,
    /// `key`.
    pub key: String,
    /// `pass_ticket`.
    pub pass_ticket: String,
    /// `appmsg_token`.
    pub appmsg_token: String,
    /// Cookie header value.
    pub cookie: String,
    /// Issue time (simulated).
    pub issued_at: i64,
    /// Expiry (simulated).
    pub expires_at: i64,
    /// Revoked through the admin API.
    pub revoked: bool,
}

impl SimCredential {
    /// The set as a secrets file holds it, for a crawler pointed at the simulator.
    pub fn to_client(&self) -> mpwatch_core::secrets::ClientCredential {
        use mpwatch_core::secrets::{ClientCredential, Secret};
        ClientCredential {
            name: self.name.clone(),
            uin: Secret::new(self.uin.clone()),
            key: Secret::new(self.key.clone()),
            pass_ticket: Secret::new(self.pass_ticket.clone()),
            appmsg_token: Secret::new(self.appmsg_token.clone()),
            cookie: Some(Secret::new(self.cookie.clone())),
            user_agent: None,
        }
    }
}

/// One request as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Sequence number.
    pub seq: u64,
    /// Wall-clock arrival, milliseconds since the epoch.
    pub at_ms: u64,
    /// Simulated arrival time.
    pub sim_time: i64,
    /// Method.
    pub method: String,
    /// Path (no query: queries carry credentials).
    pub path: String,
    /// Client address.
    pub client: String,
    /// Credential id, when the request carried a known one.
    pub credential: Option<u64>,
    /// Response status; 0 when no answer was sent (stall, reset).
    pub status: u16,
}

#[derive(Debug, Default, Clone, Copy)]
struct Window {
    start: i64,
    count: u64,
    blocked_until: i64,
}

/// Request log entries kept in memory at most.
const LOG_CAPACITY: usize = 1_000_000;

/// Everything the handlers share.
#[derive(Debug)]
pub struct SimState {
    /// The world.
    pub world: World,
    /// The clock.
    pub clock: ControlledClock,
    /// Approximate article page size.
    pub page_bytes: usize,
    fillers: Fillers,
    scenario: RwLock<Scenario>,
    /// Times each fault rule fired (for `next = N`).
    rule_fired: Mutex<Vec<u64>>,
    requests: AtomicU64,
    credentials: Mutex<Vec<SimCredential>>,
    client_windows: Mutex<HashMap<IpAddr, Window>>,
    credential_windows: Mutex<HashMap<u64, Window>>,
    log: Mutex<std::collections::VecDeque<RequestRecord>>,
    /// Base URL of the feed host, for `robots.txt` and feed self links.
    pub feed_base: RwLock<String>,
}

/// The credential id a handler found, passed to the logging layer.
#[derive(Debug, Clone, Copy)]
struct CredentialUsed(u64);

impl SimState {
    /// A new state.
    pub fn new(world: World, clock: ControlledClock, page_bytes: usize, scenario: Scenario) -> SimState {
        SimState {
            world,
            clock,
            page_bytes,
            fillers: Fillers::default(),
            rule_fired: Mutex::new(vec![0; scenario.faults.len()]),
            scenario: RwLock::new(scenario),
            requests: AtomicU64::new(0),
            credentials: Mutex::new(Vec::new()),
            client_windows: Mutex::new(HashMap::new()),
            credential_windows: Mutex::new(HashMap::new()),
            log: Mutex::new(std::collections::VecDeque::new()),
            feed_base: RwLock::new(String::new()),
        }
    }

    /// The current scenario.
    pub fn scenario(&self) -> Scenario {
        self.scenario.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Replaces the scenario (fault counters restart).
    pub fn set_scenario(&self, scenario: Scenario) {
        *lock(&self.rule_fired) = vec![0; scenario.faults.len()];
        *self.scenario.write().unwrap_or_else(std::sync::PoisonError::into_inner) = scenario;
    }

    /// Simulated now.
    pub fn now(&self) -> i64 {
        self.clock.now_f64().floor() as i64
    }

    /// Issues a credential set valid for the scenario's `credential_ttl`.
    pub fn issue_credential(&self, name: Option<String>) -> SimCredential {
        let mut credentials = lock(&self.credentials);
        let id = credentials.len() as u64 + 1;
        let seed = self.world.config().seed;
        let h = |salt: u64| hash(&[seed, id, salt, 0xC0FFEE]);
        let now = self.now();
        let credential = SimCredential {
            id,
            name: name.unwrap_or_else(|| format!("sim-{id}")),
            uin: format!("MTIz{:08x}", h(1) as u32),
            key: format!("{:016x}{:016x}{:016x}", h(2), h(3), h(4)),
            pass_ticket: format!("{:016x}{:016x}", h(5), h(6)),
            appmsg_token: format!("{}_{:016x}", 1200 + id, h(7)),
            cookie: format!("wap_sid2={:016x}{:016x}", h(8), h(9)),
            issued_at: now,
            expires_at: now + self.scenario().credential_ttl,
            revoked: false,
        };
        credentials.push(credential.clone());
        credential
    }

    /// Revokes a credential; false when unknown.
    pub fn revoke_credential(&self, id: u64) -> bool {
        lock(&self.credentials).iter_mut().find(|c| c.id == id).map(|c| c.revoked = true).is_some()
    }

    /// Every credential issued.
    pub fn credentials(&self) -> Vec<SimCredential> {
        lock(&self.credentials).clone()
    }

    /// The request log from sequence number `since` on.
    pub fn requests_since(&self, since: u64) -> Vec<RequestRecord> {
        lock(&self.log).iter().filter(|r| r.seq >= since).cloned().collect()
    }

    fn record(&self, record: RequestRecord) {
        let mut log = lock(&self.log);
        if log.len() >= LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(record);
    }

    fn set_status(&self, seq: u64, status: u16, credential: Option<u64>) {
        let mut log = lock(&self.log);
        // Records arrive in order, so the one we want is near the end.
        if let Some(record) = log.iter_mut().rev().take(4096).find(|r| r.seq == seq) {
            record.status = status;
            if credential.is_some() {
                record.credential = credential;
            }
        }
    }

    /// Which credential a query names (by `key` or `appmsg_token`), and whether it is
    /// usable now.
    fn credential_for(&self, params: &HashMap<String, String>) -> Option<(SimCredential, bool)> {
        let key = params.get("key").filter(|k| !k.is_empty());
        let token = params.get("appmsg_token").filter(|t| !t.is_empty());
        if key.is_none() && token.is_none() {
            return None;
        }
        let credentials = lock(&self.credentials);
        let found = credentials.iter().find(|c| key == Some(&c.key) || token == Some(&c.appmsg_token))?.clone();
        let valid = !found.revoked && self.now() < found.expires_at;
        Some((found, valid))
    }

    /// Counts a request against a window; true when the caller is (now) blocked.
    fn over_quota<K: std::hash::Hash + Eq>(
        &self,
        windows: &Mutex<HashMap<K, Window>>,
        key: K,
        limit: Option<crate::scenario::Limit>,
        cooldown: i64,
    ) -> bool {
        let Some(limit) = limit else { return false };
        let now = self.now();
        let mut windows = lock(windows);
        let window = windows.entry(key).or_default();
        if now < window.blocked_until {
            return true;
        }
        if now >= window.start + limit.window.max(1) {
            *window = Window { start: now, count: 0, blocked_until: 0 };
        }
        window.count += 1;
        if window.count > limit.limit {
            window.blocked_until = now + cooldown;
            return true;
        }
        false
    }

    /// The fault to inject into this request, if a rule fires.
    fn fault_for(&self, endpoint: Endpoint, request_number: u64) -> Option<Fault> {
        let scenario = self.scenario.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut fired = lock(&self.rule_fired);
        for (index, rule) in scenario.faults.iter().enumerate() {
            if rule.endpoint != endpoint && rule.endpoint != Endpoint::Any {
                continue;
            }
            let fires = match (rule.next, rule.probability) {
                (Some(n), _) => fired.get(index).is_some_and(|count| *count < n),
                (None, Some(p)) => unit(hash(&[self.world.config().seed, request_number, index as u64, 0xFA17])) < p,
                (None, None) => true,
            };
            if fires {
                if let Some(count) = fired.get_mut(index) {
                    *count += 1;
                }
                return Some(rule.fault.clone());
            }
        }
        None
    }
}

/// What a handler knows about its request.
struct Gate {
    endpoint: Endpoint,
    client: IpAddr,
    request_number: u64,
}

type Params = Query<HashMap<String, String>>;
type Shared = State<Arc<SimState>>;

/// Builds the router of the WeChat host.
pub fn wechat_router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/s", get(article_long))
        .route("/s/{token}", get(article_short))
        .route("/mp/profile_ext", get(profile_ext))
        .route("/mp/getappmsgext", post(getappmsgext))
        .route("/mp/appmsg_comment", get(appmsg_comment))
        .route("/mp/wappoc_appmsgcaptcha", get(captcha))
        .route("/mp/redirect_loop", get(redirect_loop))
        .route("/cgi-bin/appmsg", get(backend_appmsg))
        .route("/cgi-bin/appmsgpublish", get(backend_publish))
        .route("/robots.txt", get(robots))
        .nest("/__sim", admin_router())
        .layer(axum::middleware::from_fn_with_state(state.clone(), log_requests))
        .with_state(state)
}

/// Builds the router of the feed host (a second address, so that it is a different
/// host for robots.txt purposes).
pub fn feed_router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/feeds/{name}", get(feed))
        .route("/robots.txt", get(robots))
        .nest("/__sim", admin_router())
        .layer(axum::middleware::from_fn_with_state(state.clone(), log_requests))
        .with_state(state)
}

fn admin_router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/clock", get(clock_get).put(clock_put))
        .route("/clock/advance", post(clock_advance))
        .route("/scenario", get(scenario_get).put(scenario_put))
        .route("/credentials", get(credentials_list).post(credentials_issue))
        .route("/credentials/{id}", axum::routing::delete(credentials_revoke))
        .route("/requests", get(requests))
        .route("/truth", get(truth))
        .route("/accounts", get(accounts))
}

async fn log_requests(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let seq = state.requests.fetch_add(1, Ordering::SeqCst);
    let at_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let admin = request.uri().path().starts_with("/__sim/");
    if !admin {
        state.record(RequestRecord {
            seq,
            at_ms,
            sim_time: state.now(),
            method: request.method().to_string(),
            path: request.uri().path().to_string(),
            client: peer.ip().to_string(),
            credential: None,
            status: 0,
        });
    }
    let mut request = request;
    request.extensions_mut().insert(RequestNumber(seq));
    let response = next.run(request).await;
    if !admin {
        let credential = response.extensions().get::<CredentialUsed>().map(|c| c.0);
        state.set_status(seq, response.status().as_u16(), credential);
    }
    response
}

#[derive(Debug, Clone, Copy)]
struct RequestNumber(u64);

fn gate(endpoint: Endpoint, peer: SocketAddr, number: Option<axum::Extension<RequestNumber>>) -> Gate {
    Gate { endpoint, client: peer.ip(), request_number: number.map_or(0, |n| n.0.0) }
}

/// What quota and fault handling decided about a request.
enum Admission {
    /// Serve it, transformed by this fault if any.
    Proceed(Option<Fault>),
    /// Send this instead.
    Answer(Response),
}

/// Quota and fault handling shared by every endpoint.
fn admit(state: &SimState, gate: &Gate, credential: Option<u64>) -> Admission {
    let scenario = state.scenario();
    let client_blocked =
        state.over_quota(&state.client_windows, gate.client, scenario.quota.per_client, scenario.quota.cooldown);
    let credential_blocked = credential.is_some_and(|id| {
        state.over_quota(&state.credential_windows, id, scenario.quota.per_credential, scenario.quota.cooldown)
    });
    if client_blocked || credential_blocked {
        return Admission::Answer(throttled(gate.endpoint, scenario.verification));
    }
    match state.fault_for(gate.endpoint, gate.request_number) {
        Some(fault @ (Fault::Gzip | Fault::Trickle { .. } | Fault::Truncate | Fault::WrongCharset { .. })) => {
            Admission::Proceed(Some(fault))
        }
        Some(fault) => Admission::Answer(fault_response(&fault)),
        None => Admission::Proceed(None),
    }
}

/// The credentialed endpoints' gate: quota and faults, then a valid credential.
enum Credentialed {
    /// Serve it with this credential, transformed by this fault if any.
    Proceed(Option<Fault>, u64),
    /// Send this instead.
    Answer(Response),
}

fn admit_credentialed(state: &SimState, gate: &Gate, params: &HashMap<String, String>) -> Credentialed {
    let credential = state.credential_for(params);
    let credential_id = credential.as_ref().map(|(c, _)| c.id);
    let fault = match admit(state, gate, credential_id) {
        Admission::Proceed(fault) => fault,
        Admission::Answer(response) => return Credentialed::Answer(with_credential(response, credential_id)),
    };
    match credential {
        Some((credential, true)) => Credentialed::Proceed(fault, credential.id),
        _ => Credentialed::Answer(with_credential(no_session(), credential_id)),
    }
}

/// An article key from request fields (`mid` under the given name).
fn key_from(fields: &HashMap<String, String>, mid: &str) -> Option<ArticleKey> {
    Some(ArticleKey {
        biz: Biz::parse(fields.get("__biz")?).ok()?,
        mid: fields.get(mid)?.parse().ok()?,
        idx: fields.get("idx")?.parse().ok()?,
    })
}

/// What a throttled client gets: frequency control on APIs, verification on pages.
fn throttled(endpoint: Endpoint, style: VerificationStyle) -> Response {
    match endpoint {
        Endpoint::Article => match style {
            VerificationStyle::Page => html_response(render::verification_page("https://mp.weixin.qq.com/")),
            VerificationStyle::Redirect => {
                let mut response = StatusCode::FOUND.into_response();
                response.headers_mut().insert(
                    header::LOCATION,
                    HeaderValue::from_static(
                        "/mp/wappoc_appmsgcaptcha?poc_token=sim&target_url=https%3A%2F%2Fmp.weixin.qq.com%2F",
                    ),
                );
                response
            }
        },
        Endpoint::Backend => json_response(json!({"base_resp": {"ret": 200013, "err_msg": "freq control"}})),
        Endpoint::Feed => {
            let mut response = (StatusCode::TOO_MANY_REQUESTS, "rate limited").into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            response
        }
        _ => json_response(
            json!({"base_resp": {"ret": -6, "errmsg": "unknown error"}, "ret": -6, "errmsg": "unknown error"}),
        ),
    }
}

fn error_stream(kind: std::io::ErrorKind) -> Body {
    Body::from_stream(futures_util::stream::once(async move {
        Err::<Bytes, _>(std::io::Error::new(kind, "simulated fault"))
    }))
}

fn fault_response(fault: &Fault) -> Response {
    match fault {
        Fault::Status { status, retry_after } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (status, format!("simulated {status}")).into_response();
            if let Some(seconds) = retry_after
                && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Fault::Reset => Response::new(error_stream(std::io::ErrorKind::ConnectionReset)),
        Fault::Stall => {
            Response::new(Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>()))
        }
        Fault::Oversize { bytes } => {
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let count = bytes.div_ceil(chunk.len());
            let stream = futures_util::stream::iter((0..count).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
            let mut response = Response::new(Body::from_stream(stream));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            response
        }
        Fault::Garbage => {
            let bytes: Vec<u8> = (0..4096u64).map(|i| (hash(&[i, 0x6A7B]) as u8) | 0x80).collect();
            let mut response = Response::new(Body::from(bytes));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            response
        }
        Fault::RedirectLoop => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/mp/redirect_loop"));
            response
        }
        Fault::Gzip | Fault::Trickle { .. } | Fault::Truncate | Fault::WrongCharset { .. } => {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Sends `chunks` as the body, transformed by a fault when one applies.
fn body_response(chunks: Chunks, content_type: &'static str, fault: Option<Fault>) -> Response {
    let length = chunks.len();
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let body = match fault {
        Some(Fault::Gzip) => {
            use std::io::Write as _;
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let compressed = encoder.write_all(&chunks.concat()).and_then(|()| encoder.finish()).unwrap_or_default();
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(compressed.len()));
            Body::from(compressed)
        }
        Some(Fault::WrongCharset { charset }) => {
            let claimed = content_type.split(';').next().unwrap_or("text/html");
            if let Ok(value) = HeaderValue::from_str(&format!("{claimed}; charset={charset}")) {
                headers.insert(header::CONTENT_TYPE, value);
            }
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            Body::from_stream(futures_util::stream::iter(chunks.0.into_iter().map(Ok::<_, std::io::Error>)))
        }
        Some(Fault::Trickle { bytes_per_second }) => {
            let all = Bytes::from(chunks.concat());
            let step = bytes_per_second.max(1);
            let pieces: Vec<Bytes> =
                (0..all.len()).step_by(step).map(|start| all.slice(start..(start + step).min(all.len()))).collect();
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            let stream = futures_util::stream::unfold(pieces.into_iter(), |mut pieces| async move {
                let piece = pieces.next()?;
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                Some((Ok::<_, std::io::Error>(piece), pieces))
            });
            Body::from_stream(stream)
        }
        Some(Fault::Truncate) => {
            let all = Bytes::from(chunks.concat());
            let half = all.slice(..all.len() / 2);
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            // Let the head and the first half reach the socket before the connection drops.
            let stream = futures_util::stream::unfold(0u8, move |step| {
                let half = half.clone();
                async move {
                    match step {
                        0 => Some((Ok(half), 1)),
                        1 => {
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            Some((
                                Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "simulated truncation")),
                                2,
                            ))
                        }
                        _ => None,
                    }
                }
            });
            Body::from_stream(stream)
        }
        _ => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            Body::from_stream(futures_util::stream::iter(chunks.0.into_iter().map(Ok::<_, std::io::Error>)))
        }
    };
    (headers, body).into_response()
}

fn html_response(text: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], text).into_response()
}

fn json_response(value: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json; charset=UTF-8")], value.to_string()).into_response()
}

fn with_credential(mut response: Response, credential: Option<u64>) -> Response {
    if let Some(id) = credential {
        response.extensions_mut().insert(CredentialUsed(id));
    }
    response
}
