//! The HTTP side: WeChat's endpoints, the feed host, the admin API, quotas, faults and
//! the request log.

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

fn canonical_url(article: &SimArticle) -> String {
    format!(
        "https://mp.weixin.qq.com/s?__biz={}&mid={}&idx={}&sn={}",
        article.key.biz, article.key.mid, article.key.idx, article.sn
    )
}

/// The page of an article at `now`, as an anonymous or credentialed client sees it.
fn article_response(
    state: &SimState,
    account: &SimAccount,
    article: &SimArticle,
    credentialed: bool,
    fault: Option<Fault>,
) -> Response {
    let now = state.now();
    match article.status_at(now) {
        ArticleStatus::Deleted => return html_response(render::deleted_page()),
        ArticleStatus::Blocked => {
            return html_response(render::blocked_page(article.blocked_reason.as_deref().unwrap_or("")));
        }
        ArticleStatus::Unavailable => return html_response(render::unavailable_page()),
        ArticleStatus::Ok | ArticleStatus::Pending => {}
    }
    let context = PageContext {
        world: &state.world,
        account,
        article,
        short_url: format!("https://mp.weixin.qq.com/s/{}", state.world.short_token(article)),
        page_bytes: state.page_bytes,
        counts: credentialed.then(|| article.counts_at(account, now)),
    };
    body_response(render::article_page(&context, &state.fillers), "text/html; charset=utf-8", fault)
}

async fn article_long(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    number: Option<axum::Extension<RequestNumber>>,
    Query(params): Params,
) -> Response {
    let gate = gate(Endpoint::Article, peer, number);
    let credential = state.credential_for(&params);
    let credential_id = credential.as_ref().map(|(c, _)| c.id);
    let fault = match admit(&state, &gate, credential_id) {
        Admission::Proceed(fault) => fault,
        Admission::Answer(response) => return with_credential(response, credential_id),
    };
    let key = key_from(&params, "mid");
    let found = key.and_then(|key| state.world.article_by_key(&key, state.now()));
    let response = match found {
        Some((account, article)) if params.get("sn").is_none_or(|sn| sn == &article.sn) => {
            let credentialed = credential.as_ref().is_some_and(|(_, valid)| *valid);
            article_response(&state, account, &article, credentialed, fault)
        }
        _ => html_response(render::parameter_error_page()),
    };
    with_credential(response, credential_id)
}

async fn article_short(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    number: Option<axum::Extension<RequestNumber>>,
    Path(token): Path<String>,
) -> Response {
    let gate = gate(Endpoint::Article, peer, number);
    let fault = match admit(&state, &gate, None) {
        Admission::Proceed(fault) => fault,
        Admission::Answer(response) => return response,
    };
    match state.world.article_by_token(&token).filter(|(_, article)| article.published_at <= state.now()) {
        Some((account, article)) => article_response(&state, account, &article, false, fault),
        None => html_response(render::parameter_error_page()),
    }
}

async fn redirect_loop() -> Response {
    fault_response(&Fault::RedirectLoop)
}

async fn captcha() -> Response {
    html_response(render::verification_page("https://mp.weixin.qq.com/"))
}

async fn robots() -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], render::ROBOTS_TXT).into_response()
}

fn no_session() -> Response {
    json_response(
        json!({"base_resp": {"ret": -3, "errmsg": "no session", "cookie_count": 0}, "ret": -3, "errmsg": "no session", "cookie_count": 0}),
    )
}

/// `copyright_stat` as the list APIs spell it.
fn list_copyright(copyright: Copyright) -> i64 {
    match copyright {
        Copyright::Original => 11,
        Copyright::Repost => 101,
        Copyright::None => 100,
    }
}

fn list_entry(article: &SimArticle, now: i64) -> Value {
    // Lists serve URLs the way WeChat embeds them: &amp; and tracking parameters.
    let content_url = format!(
        "http://mp.weixin.qq.com/s?__biz={}&amp;mid={}&amp;idx={}&amp;sn={}&amp;chksm={:016x}&amp;scene=27#wechat_redirect",
        article.key.biz,
        article.key.mid,
        article.key.idx,
        article.sn,
        hash(&[article.key.mid, u64::from(article.key.idx)])
    );
    let deleted = article.status_at(now) != ArticleStatus::Ok;
    json!({
        "title": article.title,
        "digest": article.digest,
        "content": "",
        "fileid": 0,
        "content_url": content_url,
        "source_url": "",
        "cover": format!("http://mmbiz.qpic.cn/sim_jpg/{}/{}_{}/0?wx_fmt=jpeg", article.key.biz.numeric_id(), article.key.mid, article.key.idx),
        "subtype": 9,
        "author": article.author,
        "copyright_stat": list_copyright(article.copyright),
        "del_flag": if deleted { 4 } else { 1 },
        "item_show_type": article.item_show_type(),
        "audio_fileid": 0,
        "duration": 0,
        "play_url": "",
        "malicious_title_reason_id": 0,
        "malicious_content_type": 0,
    })
}

async fn profile_ext(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    number: Option<axum::Extension<RequestNumber>>,
    Query(params): Params,
) -> Response {
    let gate = gate(Endpoint::ProfileExt, peer, number);
    let (fault, credential_id) = match admit_credentialed(&state, &gate, &params) {
        Credentialed::Proceed(fault, id) => (fault, Some(id)),
        Credentialed::Answer(response) => return response,
    };
    let Some(account) =
        params.get("__biz").and_then(|b| Biz::parse(b).ok()).and_then(|b| state.world.account_by_biz(&b))
    else {
        return with_credential(json_response(json!({"ret": -1, "errmsg": "system error"})), credential_id);
    };
    let now = state.now();
    let offset: usize = params.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let count: usize = params.get("count").and_then(|c| c.parse().ok()).unwrap_or(10).clamp(1, 10);
    let days: Vec<u32> = state.world.push_days_desc(account, now).skip(offset).take(count + 1).collect();
    let more = days.len() > count;
    let list: Vec<Value> = days
        .iter()
        .take(count)
        .filter_map(|day| {
            let (mid, published, n) = state.world.push(account, *day)?;
            let articles: Vec<SimArticle> = (1..=n).filter_map(|idx| state.world.article(account, *day, idx)).collect();
            let headline = articles.first()?;
            let mut ext = list_entry(headline, now);
            ext["is_multi"] = json!(i32::from(n > 1));
            ext["multi_app_msg_item_list"] = Value::Array(articles.iter().skip(1).map(|a| list_entry(a, now)).collect());
            Some(json!({
                "comm_msg_info": {"id": 1_000_000_000 + mid % 1_000_000, "type": 49, "datetime": published, "fakeid": account.numeric_id.to_string(), "status": 2, "content": ""},
                "app_msg_ext_info": ext,
            }))
        })
        .collect();
    let returned = list.len();
    // general_msg_list is a JSON string, and its URLs carry `\/` as WeChat double-encodes them.
    let inner = json!({ "list": list }).to_string().replace('/', "\\/");
    let body = json!({
        "ret": 0,
        "errmsg": "ok",
        "msg_count": returned,
        "can_msg_continue": i32::from(more),
        "general_msg_list": inner,
        "next_offset": offset + returned,
        "video_count": 1,
        "use_video_tab": 1,
        "real_type": 0,
        "home_page_list": [],
    });
    let response = body_response(Chunks(vec![Bytes::from(body.to_string())]), "application/json; charset=UTF-8", fault);
    with_credential(response, credential_id)
}

async fn getappmsgext(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    number: Option<axum::Extension<RequestNumber>>,
    Query(params): Params,
    axum::extract::Form(form): axum::extract::Form<HashMap<String, String>>,
) -> Response {
    let gate = gate(Endpoint::Getappmsgext, peer, number);
    let (fault, credential_id) = match admit_credentialed(&state, &gate, &params) {
        Credentialed::Proceed(fault, id) => (fault, Some(id)),
        Credentialed::Answer(response) => return response,
    };
    let key = key_from(&form, "mid");
    let now = state.now();
    let response = match key.and_then(|key| state.world.article_by_key(&key, now)) {
        Some((account, article)) if form.get("sn").is_none_or(|sn| sn == &article.sn) => {
            let counts = article.counts_at(account, now);
            let body = json!({
                "advertisement_info": [],
                "appmsgstat": {
                    "show": true, "is_login": true, "liked": false,
                    "read_num": counts.reads, "like_num": counts.wows, "old_like_num": counts.likes,
                    "share_num": counts.shares, "real_read_num": 0, "ret": 0, "version": 1, "prompted": 1,
                    "like_disabled": false, "style": 1, "video_pv": 0, "video_uv": 0, "friend_like_num": 0,
                },
                "comment_count": counts.comments,
                "comment_enabled": 1,
                "base_resp": {"ret": 0, "errmsg": "ok"},
            });
            body_response(Chunks(vec![Bytes::from(body.to_string())]), "application/json; charset=UTF-8", fault)
        }
        _ => json_response(json!({"base_resp": {"ret": 200002, "errmsg": "invalid args"}, "ret": 200002})),
    };
    with_credential(response, credential_id)
}

const COMMENTS: &[&str] =
    &["写得好，受教了", "期待后续报道", "这个结论有待商榷", "转给了同事", "图片很清楚", "第三段没看懂"];

async fn appmsg_comment(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    number: Option<axum::Extension<RequestNumber>>,
    Query(params): Params,
) -> Response {
    let gate = gate(Endpoint::Comment, peer, number);
    let (fault, credential_id) = match admit_credentialed(&state, &gate, &params) {
        Credentialed::Proceed(fault, id) => (fault, Some(id)),
        Credentialed::Answer(response) => return response,
    };
    let key = key_from(&params, "appmsgid");
    let now = state.now();
    let response = match key.and_then(|key| state.world.article_by_key(&key, now)) {
        Some((account, article)) => {
            let total = article.counts_at(account, now).comments;
            let elected: Vec<Value> = (0..total.min(20))
                .map(|i| {
                    let h = hash(&[article.key.mid, u64::from(article.key.idx), i as u64]);
                    json!({
                        "id": i + 1,
                        "nick_name": format!("读者{}", h % 10_000),
                        "content": COMMENTS[(h % COMMENTS.len() as u64) as usize],
                        "create_time": article.published_at + 600 + (h % 86_400) as i64,
                        "like_num": h % 50,
                    })
                })
                .collect();
            let body = json!({"base_resp": {"ret": 0, "errmsg": "ok"}, "elected_comment": elected, "elected_comment_total_cnt": total, "enabled": 1});
            body_response(Chunks(vec![Bytes::from(body.to_string())]), "application/json; charset=UTF-8", fault)
        }
        None => json_response(json!({"base_resp": {"ret": 200002, "errmsg": "invalid args"}})),
    };
    with_credential(response, credential_id)
}

fn backend_articles(state: &SimState, params: &HashMap<String, String>) -> Option<(Vec<SimArticle>, usize)> {
    let account = params.get("fakeid").and_then(|b| Biz::parse(b).ok()).and_then(|b| state.world.account_by_biz(&b))?;
    let begin: usize = params.get("begin").and_then(|b| b.parse().ok()).unwrap_or(0);
    let count: usize = params.get("count").and_then(|c| c.parse().ok()).unwrap_or(5).clamp(1, 20);
    let all = state.world.articles_of(account, state.now());
    let total = all.len();
    Some((all.into_iter().skip(begin).take(count).collect(), total))
}

fn backend_entry(article: &SimArticle) -> Value {
    json!({
        "aid": format!("{}_{}", article.key.mid, article.key.idx),
        "appmsgid": article.key.mid,
        "itemidx": article.key.idx,
        "title": article.title,
        "digest": article.digest,
        "link": canonical_url(article),
        "cover": format!("https://mmbiz.qpic.cn/sim_jpg/{}/{}_{}/0?wx_fmt=jpeg", article.key.biz.numeric_id(), article.key.mid, article.key.idx),
        "create_time": article.published_at,
        "update_time": article.published_at,
        "item_show_type": article.item_show_type(),
        "copyright_type": match article.copyright { Copyright::Original => 1, _ => 0 },
        "author_name": article.author,
        "is_deleted": 0,
    })
}

fn backend_gate(
    state: &SimState,
    peer: SocketAddr,
    number: Option<axum::Extension<RequestNumber>>,
    params: &HashMap<String, String>,
) -> Admission {
    let gate = gate(Endpoint::Backend, peer, number);
    let admission = admit(state, &gate, None);
    if let Admission::Answer(_) = admission {
        return admission;
    }
    if state.scenario().backend_lists == BackendLists::FrequencyControl {
        return Admission::Answer(json_response(json!({"base_resp": {"ret": 200013, "err_msg": "freq control"}})));
    }
    if params.get("token").is_none_or(String::is_empty) {
        return Admission::Answer(json_response(json!({"base_resp": {"ret": 200003, "err_msg": "invalid session"}})));
    }
    admission
}

/// A backend list answer: the gate, the page of articles, the endpoint's own shape.
fn backend_list(
    state: &SimState,
    peer: SocketAddr,
    number: Option<axum::Extension<RequestNumber>>,
    params: &HashMap<String, String>,
    shape: impl Fn(&[SimArticle], usize) -> Value,
) -> Response {
    let fault = match backend_gate(state, peer, number, params) {
        Admission::Proceed(fault) => fault,
        Admission::Answer(response) => return response,
    };
    match backend_articles(state, params) {
        Some((articles, total)) => {
            let body = shape(&articles, total);
            body_response(Chunks(vec![Bytes::from(body.to_string())]), "application/json; charset=UTF-8", fault)
        }
        None => json_response(json!({"base_resp": {"ret": 200002, "err_msg": "invalid args"}})),
    }
}

async fn backend_appmsg(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    number: Option<axum::Extension<RequestNumber>>,
    Query(params): Params,
) -> Response {
    backend_list(&state, peer, number, &params, |articles, total| {
        json!({
            "base_resp": {"ret": 0, "err_msg": "ok"},
            "app_msg_cnt": total,
            "app_msg_list": articles.iter().map(backend_entry).collect::<Vec<_>>(),
        })
    })
}

async fn backend_publish(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    number: Option<axum::Extension<RequestNumber>>,
    Query(params): Params,
) -> Response {
    backend_list(&state, peer, number, &params, |articles, total| {
        // One publish_info per article keeps paging simple; WeChat groups by push.
        let publish_list: Vec<Value> = articles
            .iter()
            .map(|a| json!({"publish_type": 101, "publish_info": json!({"type": 9, "msgid": a.key.mid, "appmsgex": [backend_entry(a)]}).to_string()}))
            .collect();
        let page = json!({"total_count": total, "publish_count": total, "masssend_count": total, "publish_list": publish_list});
        json!({"base_resp": {"ret": 0, "err_msg": "ok"}, "publish_page": page.to_string()})
    })
}

/// Feed names: `MP_WXS_<numeric id>.atom` (wewe-rss style, short links), `.rss`
/// (RSSHub style, long links) and `.json` (JSON Feed).
async fn feed(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    number: Option<axum::Extension<RequestNumber>>,
    Path(name): Path<String>,
) -> Response {
    let gate = gate(Endpoint::Feed, peer, number);
    let fault = match admit(&state, &gate, None) {
        Admission::Proceed(fault) => fault,
        Admission::Answer(response) => return response,
    };
    let Some((stem, extension)) = name.rsplit_once('.') else { return StatusCode::NOT_FOUND.into_response() };
    let numeric = stem.strip_prefix("MP_WXS_").and_then(|n| n.parse::<u64>().ok());
    let Some(account) = numeric.and_then(|n| state.world.accounts().iter().find(|a| a.numeric_id == n)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let now = state.now();
    let articles: Vec<SimArticle> = state.world.articles_of(account, now).into_iter().take(20).collect();
    let base = state.feed_base.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let rfc3339 = |t: i64| crate::feeds::rfc3339(t);
    let (text, content_type) = match extension {
        "atom" => (
            crate::feeds::atom(&base, account, &articles, &state.world, rfc3339(now)),
            "application/atom+xml; charset=utf-8",
        ),
        "rss" => (crate::feeds::rss(&base, account, &articles), "application/rss+xml; charset=utf-8"),
        "json" => (crate::feeds::json_feed(&base, account, &articles), "application/feed+json; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    body_response(Chunks(vec![Bytes::from(text)]), content_type, fault)
}

async fn clock_get(State(state): Shared) -> Response {
    json_response(json!({"now": state.now(), "now_f64": state.clock.now_f64(), "mode": state.clock.mode()}))
}

async fn clock_put(State(state): Shared, axum::Json(mode): axum::Json<ClockMode>) -> Response {
    state.clock.set(mode);
    clock_get(State(state)).await
}

#[derive(Deserialize)]
struct Advance {
    seconds: f64,
}

async fn clock_advance(State(state): Shared, axum::Json(advance): axum::Json<Advance>) -> Response {
    state.clock.advance(advance.seconds);
    clock_get(State(state)).await
}

async fn scenario_get(State(state): Shared) -> Response {
    json_response(serde_json::to_value(state.scenario()).unwrap_or(Value::Null))
}

async fn scenario_put(State(state): Shared, axum::Json(scenario): axum::Json<Scenario>) -> Response {
    state.set_scenario(scenario);
    scenario_get(State(state)).await
}

#[derive(Deserialize, Default)]
struct IssueRequest {
    name: Option<String>,
}

async fn credentials_issue(State(state): Shared, body: Option<axum::Json<IssueRequest>>) -> Response {
    let request = body.map(|b| b.0).unwrap_or_default();
    json_response(serde_json::to_value(state.issue_credential(request.name)).unwrap_or(Value::Null))
}

async fn credentials_list(State(state): Shared) -> Response {
    json_response(serde_json::to_value(state.credentials()).unwrap_or(Value::Null))
}

async fn credentials_revoke(State(state): Shared, Path(id): Path<u64>) -> Response {
    if state.revoke_credential(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn requests(State(state): Shared, Query(params): Params) -> Response {
    let since = params.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
    let records = state.requests_since(since);
    let next = records.last().map_or(since, |r| r.seq + 1);
    json_response(json!({"next": next, "requests": records}))
}

/// One article of the truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthArticle {
    /// Key.
    pub key: ArticleKey,
    /// Signature.
    pub sn: String,
    /// Canonical URL.
    pub url: String,
    /// Short link.
    pub short_url: String,
    /// Account index in the world.
    pub account_index: usize,
    /// Account display name.
    pub account: String,
    /// Kind (`article`, `picture`, ...).
    pub kind: mpwatch_core::ArticleKind,
    /// Originality.
    pub copyright: Copyright,
    /// Status at the instant.
    pub status: ArticleStatus,
    /// Title.
    pub title: String,
    /// Author.
    pub author: String,
    /// Summary.
    pub digest: String,
    /// Publication.
    pub published_at: i64,
    /// Counts at the instant.
    pub counts: crate::world::SimCounts,
}

/// Every article published by `at`, with its state and counts at `at`.
pub fn truth_at(world: &World, at: i64) -> Vec<TruthArticle> {
    world.accounts().iter().flat_map(|account| truth_articles(world, account, at)).collect()
}

fn truth_articles<'w>(world: &'w World, account: &'w SimAccount, at: i64) -> impl Iterator<Item = TruthArticle> + 'w {
    world.articles_of(account, at).into_iter().map(move |article| TruthArticle {
        url: canonical_url(&article),
        short_url: format!("https://mp.weixin.qq.com/s/{}", world.short_token(&article)),
        account_index: account.index,
        account: account.nickname.clone(),
        kind: article.kind,
        copyright: article.copyright,
        status: article.status_at(at),
        title: article.title.clone(),
        author: article.author.clone(),
        digest: article.digest.clone(),
        published_at: article.published_at,
        counts: article.counts_at(account, at),
        sn: article.sn.clone(),
        key: article.key,
    })
}

/// Streams the truth account by account, so that a world of 100k+ articles never sits
/// in memory as one document.
async fn truth(State(state): Shared, Query(params): Params) -> Response {
    let at = params.get("at").and_then(|a| a.parse().ok()).unwrap_or_else(|| state.now());
    let accounts = state.world.accounts().len();
    let head = futures_util::stream::once(async move {
        Ok::<_, std::io::Error>(Bytes::from(format!("{{\"at\":{at},\"articles\":[")))
    });
    let mut first = true;
    let body = futures_util::stream::iter(0..accounts).filter_map(move |index| {
        let state = state.clone();
        let chunk = truth_of_account(&state.world, index, at).map(|json| {
            let separator = if first || json.is_empty() { "" } else { "," };
            if !json.is_empty() {
                first = false;
            }
            Ok(Bytes::from(format!("{separator}{json}")))
        });
        async move { chunk }
    });
    let tail = futures_util::stream::once(async { Ok(Bytes::from_static(b"]}")) });
    let stream = head.chain(body).chain(tail);
    ([(header::CONTENT_TYPE, "application/json; charset=UTF-8")], Body::from_stream(stream)).into_response()
}

/// The truth of one account as comma-separated JSON objects (empty when it has none).
fn truth_of_account(world: &World, index: usize, at: i64) -> Option<String> {
    let account = world.accounts().get(index)?;
    let articles: Vec<String> =
        truth_articles(world, account, at).filter_map(|a| serde_json::to_string(&a).ok()).collect();
    Some(articles.join(","))
}

async fn accounts(State(state): Shared) -> Response {
    json_response(serde_json::to_value(state.world.accounts()).unwrap_or(Value::Null))
}
