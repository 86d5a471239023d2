//! What every request passes before a handler sees it: the access token (compared in
//! constant time), a request-rate limit per client address (governor), limits on the
//! request's size, and the security headers of every answer (a strict
//! Content-Security-Policy among them).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use mpwatch_core::secrets::Secret;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;

/// The policy of every page: nothing but this server's own styles and images (and
/// images over HTTPS, as article bodies link them); no script from anywhere, no frames,
/// no plugins, forms only to this server.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The longest query string answered (filters are short; anything longer is abuse).
pub const MAX_QUERY_BYTES: usize = 2048;

/// The cookie a browser keeps after opening a `?token=` link: a digest of the token
/// (never the token itself, which other services on the host could read).
const TOKEN_COOKIE: &str = "mpwatch_session";

/// The shortest token accepted (`openssl rand -hex 32` gives 64).
pub const MIN_TOKEN_CHARS: usize = 32;

/// Refuses a token that is short, or has characters a URL would change (`+`, spaces).
pub fn check_token_strength(token: &str) -> Result<(), crate::ServeError> {
    let url_safe = token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
    if token.chars().count() < MIN_TOKEN_CHARS || !url_safe {
        return Err(crate::ServeError::WeakToken { min: MIN_TOKEN_CHARS });
    }
    Ok(())
}

/// The checks, shared by every request.
#[derive(Clone)]
pub struct Guard(Arc<GuardInner>);

struct GuardInner {
    /// SHA-256 of the token: compared in constant time and of constant length.
    token_digest: Option<[u8; 32]>,
    /// What the cookie holds: a digest of the token, so the cookie is not the token.
    cookie_value: Option<String>,
    /// `Secure` cookies (the server is reached over https).
    secure: bool,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    requests: AtomicU64,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("token", &self.0.token_digest.map(|_| "***")).finish_non_exhaustive()
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl Guard {
    /// A guard requiring `token` (when set) and allowing `requests_per_minute` per
    /// client address (IPv6 clients per /64, what one subscriber usually holds), in
    /// bursts of a tenth of it but at least 10. `secure`: the server is reached over
    /// https (its cookie is `Secure`).
    pub fn new(token: Option<Secret>, requests_per_minute: u32, secure: bool) -> Guard {
        let per_minute = NonZeroU32::new(requests_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new((requests_per_minute / 10).max(10)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        let cookie_value = token.as_ref().map(|token| {
            digest(&format!("mpwatch-session:{}", token.expose())).iter().map(|b| format!("{b:02x}")).collect()
        });
        Guard(Arc::new(GuardInner {
            token_digest: token.as_ref().map(|token| digest(token.expose())),
            cookie_value,
            secure,
            limiter: RateLimiter::keyed(quota),
            requests: AtomicU64::new(0),
        }))
    }

    /// `router` behind the checks and with the security headers.
    pub fn apply(self, router: Router) -> Router {
        let headers: [(HeaderName, &'static str); 5] = [
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Article images are hot-link protected by Referer, and no URL of this server
            // (with a `?token=`) should reach another site.
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        ];
        let mut router = router.layer(middleware::from_fn_with_state(self, check)).layer(CompressionLayer::new());
        for (name, value) in headers {
            router = router.layer(SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value)));
        }
        router
    }

    /// Does the request carry the token (when one is required)? `Some(true)` when it
    /// came as `?token=` (the answer then sets the cookie).
    fn authorised(&self, headers: &HeaderMap, query: Option<&str>) -> Option<bool> {
        let Some(expected) = &self.0.token_digest else { return Some(false) };
        let matches = |given: &str| bool::from(digest(given).ct_eq(expected));
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            // The scheme is case-insensitive (RFC 9110).
            .and_then(|v| v.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")))
            .map(|(_, token)| token.trim());
        let header_token = headers.get("x-mpwatch-token").and_then(|v| v.to_str().ok());
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().strip_prefix(TOKEN_COOKIE).and_then(|rest| rest.strip_prefix('=')))
            .next();
        if bearer.into_iter().chain(header_token).any(matches) {
            return Some(false);
        }
        let session = self.0.cookie_value.as_deref().unwrap_or_default();
        if cookie.is_some_and(|cookie| bool::from(digest(cookie).ct_eq(&digest(session)))) {
            return Some(false);
        }
        let from_query = query
            .into_iter()
            .flat_map(|q| url::form_urlencoded::parse(q.as_bytes()))
            .find(|(key, _)| key == "token")
            .map(|(_, value)| value.into_owned());
        match from_query {
            Some(token) if matches(&token) => Some(true),
            _ => None,
        }
    }
}

/// The checks, in order: size, rate, token.
async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let query = request.uri().query().map(str::to_string);
    if query.as_ref().is_some_and(|q| q.len() > MAX_QUERY_BYTES) {
        return (StatusCode::URI_TOO_LONG, "the query is too long").into_response();
    }
    let has_body =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
            || request.headers().contains_key(header::TRANSFER_ENCODING);
    if has_body {
        return (StatusCode::PAYLOAD_TOO_LARGE, "this server takes no request bodies").into_response();
    }
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| rate_key(info.0.ip()))
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    if guard.0.requests.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
        // Forget clients that have been quiet long enough to be back at full burst.
        guard.0.limiter.retain_recent();
    }
    if let Err(not_until) = guard.0.limiter.check_key(&client) {
        let wait = not_until.wait_time_from(DefaultClock::default().now()).as_secs().max(1);
        return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, wait.to_string())], "too many requests")
            .into_response();
    }
    let Some(from_query) = guard.authorised(request.headers(), query.as_deref()) else {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"mpwatch\"")],
            "a token is required: send `Authorization: Bearer <token>` or add ?token=<token>",
        )
            .into_response();
    };
    let protected = guard.0.token_digest.is_some();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if protected {
        // Pages behind a token are for this client only.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    }
    if from_query && let Some(session) = &guard.0.cookie_value {
        // A browser that opened a `?token=` link stays signed in for the dashboard's
        // links, with a cookie that is a digest of the token, not the token.
        let secure = if guard.0.secure { "; Secure" } else { "" };
        let cookie = format!("{TOKEN_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/{secure}");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The key a client's requests are counted under: its address, or for IPv6 its /64.
fn rate_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let segments = v6.segments();
                IpAddr::from([segments[0], segments[1], segments[2], segments[3], 0, 0, 0, 0])
            }
        },
    }
}
