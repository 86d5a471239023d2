//! HTTP fetching: timeouts, a body size cap, redirects, charset, retries with backoff.
//! Outcomes a crawler acts on (throttling, server errors) are values, not panics; no
//! URL with a credential ever reaches a log line or an error message.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use mpwatch_core::config::HttpConfig;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT};

/// The user agent of a WeChat client, for credentialed requests without their own.
pub const MICROMESSENGER_UA: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.193 Mobile Safari/537.36 MicroMessenger/8.0.50.2701(0x28003253) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64";

/// A fetched response.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// HTTP status.
    pub status: u16,
    /// The URL after redirects.
    pub final_url: String,
    /// The body, decoded to UTF-8 bytes when the charset was another.
    pub body: Bytes,
    /// `Retry-After`, when given.
    pub retry_after: Option<Duration>,
    /// Time taken.
    pub elapsed: Duration,
    /// When the request was sent (clock seconds; set by the caller's clock).
    pub sent_at: i64,
    /// A declared charset the bytes contradicted (they were valid UTF-8), if any.
    pub ignored_charset: Option<String>,
}

/// Why a fetch failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// Could not connect.
    #[error("connect error")]
    Connect,
    /// Timed out (connect, read or total).
    #[error("timeout")]
    Timeout,
    /// The body exceeded the configured cap.
    #[error("body larger than {0} bytes")]
    TooLarge(u64),
    /// Too many redirects.
    #[error("too many redirects")]
    Redirects,
    /// The connection broke mid-answer.
    #[error("connection broken: {0}")]
    Broken(String),
    /// The request could not be built.
    #[error("bad request: {0}")]
    Request(String),
}

impl FetchError {
    /// Worth retrying soon.
    pub fn is_transient(&self) -> bool {
        matches!(self, FetchError::Connect | FetchError::Timeout | FetchError::Broken(_))
    }

    /// The outcome class written to the fetch log.
    pub fn outcome(&self) -> &'static str {
        match self {
            FetchError::Connect => "connect_error",
            FetchError::Timeout => "timeout",
            FetchError::TooLarge(_) => "too_large",
            FetchError::Redirects => "redirect_loop",
            FetchError::Broken(_) => "broken",
            FetchError::Request(_) => "bad_request",
        }
    }
}

fn classify(error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        FetchError::Timeout
    } else if error.is_redirect() {
        FetchError::Redirects
    } else if error.is_connect() {
        FetchError::Connect
    } else if error.is_builder() {
        FetchError::Request("invalid request".into())
    } else {
        // Never the URL: it may carry a credential.
        FetchError::Broken(error.without_url().to_string())
    }
}

/// Makes rustls use the ring provider (reqwest is built without a default one, to
/// avoid compiling aws-lc). Safe to call any number of times.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds a client with the configured timeouts, redirect limit, proxy and user agent.
pub fn build_client(
    config: &HttpConfig,
    user_agent: Option<&str>,
    cookies: bool,
) -> Result<reqwest::Client, FetchError> {
    install_tls_provider();
    let mut headers = HeaderMap::new();
    let agent = user_agent.unwrap_or(&config.user_agent);
    headers.insert(USER_AGENT, HeaderValue::from_str(agent).map_err(|_| FetchError::Request("user agent".into()))?);
    let mut builder = reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.read_timeout)
        .timeout(config.total_timeout)
        .redirect(reqwest::redirect::Policy::limited(config.max_redirects as usize))
        .cookie_store(cookies)
        .gzip(true)
        .brotli(true)
        .local_address(config.local_address);
    if let Some(proxy) = &config.proxy {
        builder = builder.proxy(reqwest::Proxy::all(proxy).map_err(|_| FetchError::Request("proxy".into()))?);
    }
    builder.build().map_err(|e| FetchError::Request(e.without_url().to_string()))
}

/// Sends a request and reads the body up to `max_body` bytes.
pub async fn fetch(request: reqwest::RequestBuilder, max_body: u64) -> Result<Fetched, FetchError> {
    let started = std::time::Instant::now();
    let response = request.send().await.map_err(classify)?;
    let status = response.status().as_u16();
    let final_url = response.url().to_string();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
    let charset = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("charset=")))
        .map(|c| c.trim_matches('"').to_ascii_lowercase());
    if response.content_length().is_some_and(|length| length > max_body) {
        return Err(FetchError::TooLarge(max_body));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(classify)?;
        if body.len() as u64 + chunk.len() as u64 > max_body {
            return Err(FetchError::TooLarge(max_body));
        }
        body.extend_from_slice(&chunk);
    }
    let decoded = to_utf8(body, charset.as_deref());
    Ok(Fetched {
        status,
        final_url,
        body: decoded.text,
        retry_after,
        elapsed: started.elapsed(),
        sent_at: 0,
        ignored_charset: decoded.ignored_label,
    })
}

/// A body as UTF-8, and a declared charset its bytes contradicted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The text, UTF-8.
    pub text: Bytes,
    /// A declared charset (header or `<meta>`) that was not used because the bytes are
    /// valid UTF-8.
    pub ignored_label: Option<String>,
}

/// Decodes a body to UTF-8 by what its bytes are first: a byte-order mark, else bytes
/// that are valid UTF-8 stay UTF-8 (WeChat serves UTF-8; text in GBK or Big5 is almost
/// never valid UTF-8, so a header or `<meta>` claiming otherwise is a lie from a proxy
/// or mirror), else the header's charset, else a `<meta charset>` in the first
/// kilobytes, else the bytes as they are (the parser tolerates anything).
pub fn to_utf8(body: Vec<u8>, header_charset: Option<&str>) -> Decoded {
    if let Some((encoding, bom_length)) = encoding_rs::Encoding::for_bom(&body) {
        let (text, _) = encoding.decode_without_bom_handling(&body[bom_length..]);
        return Decoded { text: Bytes::from(text.into_owned()), ignored_label: None };
    }
    let sniffed = || {
        let head = String::from_utf8_lossy(&body[..body.len().min(2048)]).to_ascii_lowercase();
        let at = head.find("charset=")?;
        let rest = &head[at + 8..];
        let value: String = rest
            .trim_start_matches(['"', '\''])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        (!value.is_empty()).then_some(value)
    };
    let label = header_charset.map(str::to_string).or_else(sniffed);
    let encoding = label.as_deref().and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()));
    let declared_other = encoding.is_some_and(|e| e != encoding_rs::UTF_8);
    if std::str::from_utf8(&body).is_ok() {
        let ignored_label = if declared_other { label } else { None };
        return Decoded { text: Bytes::from(body), ignored_label };
    }
    match encoding {
        Some(encoding) if declared_other => {
            let (text, _, _) = encoding.decode(&body);
            Decoded { text: Bytes::from(text.into_owned()), ignored_label: None }
        }
        _ => Decoded { text: Bytes::from(body), ignored_label: None },
    }
}

/// A `Retry-After` value in either form: delay seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, how long from `now`; a date in the past is no
/// wait). `None` for anything else.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Full-jitter exponential backoff: a random wait in `[0, min(cap, base × 2^attempt))`.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, random_unit: f64) -> Duration {
    let ceiling = base.saturating_mul(1u32 << attempt.min(20)).min(cap);
    ceiling.mul_f64(random_unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn https_urls_are_supported() {
        // Nothing listens on port 1: a connect error proves the request was built
        // (an https URL without a TLS backend fails at build time instead).
        let client = build_client(&HttpConfig::default(), None, false).unwrap();
        let error = fetch(client.get("https://127.0.0.1:1/"), 1024).await.unwrap_err();
        assert!(matches!(error, FetchError::Connect), "{error:?}");
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let base = Duration::from_millis(500);
        let cap = Duration::from_secs(30);
        assert_eq!(backoff(0, base, cap, 1.0), base);
        assert_eq!(backoff(3, base, cap, 0.5), Duration::from_secs(2));
        assert_eq!(backoff(30, base, cap, 1.0), cap);
        assert_eq!(backoff(5, base, cap, 0.0), Duration::ZERO);
    }

    #[test]
    fn retry_after_in_seconds_and_as_an_http_date() {
        let now = httpdate::parse_http_date("Sat, 28 Nov 2026 12:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Sat, 28 Nov 2026 12:01:30 GMT", now), Some(Duration::from_secs(90)));
        assert_eq!(parse_retry_after("Sat, 28 Nov 2026 11:00:00 GMT", now), Some(Duration::ZERO), "past date");
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn other_charsets_become_utf8() {
        let gbk = encoding_rs::GBK.encode("环球科学").0.into_owned();
        let mut page = b"<html><head><meta charset=\"gbk\"></head><body>".to_vec();
        page.extend_from_slice(&gbk);
        let decoded = to_utf8(page, None);
        assert!(String::from_utf8(decoded.text.to_vec()).unwrap().contains("环球科学"));
        let header = to_utf8(gbk, Some("gb2312"));
        assert_eq!(std::str::from_utf8(&header.text).unwrap(), "环球科学");
        assert_eq!(to_utf8(b"plain".to_vec(), None).text, Bytes::from_static(b"plain"));
    }

    #[test]
    fn bytes_that_are_utf8_stay_utf8_whatever_the_header_claims() {
        let page = "<html><head><meta charset=\"gbk\"></head><body>环球科学 科研圈</body></html>";
        let decoded = to_utf8(page.as_bytes().to_vec(), Some("gbk"));
        assert_eq!(std::str::from_utf8(&decoded.text).unwrap(), page);
        assert_eq!(decoded.ignored_label.as_deref(), Some("gbk"));
        // The meta tag alone lies too.
        let decoded = to_utf8(page.as_bytes().to_vec(), None);
        assert_eq!(std::str::from_utf8(&decoded.text).unwrap(), page);
        assert_eq!(decoded.ignored_label.as_deref(), Some("gbk"));
        // A byte-order mark wins over everything.
        let mut bom = vec![0xFF, 0xFE];
        bom.extend("中科院".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(std::str::from_utf8(&to_utf8(bom, Some("gbk")).text).unwrap(), "中科院");
        // Honest UTF-8 is nothing to report.
        assert_eq!(to_utf8("学术志".as_bytes().to_vec(), Some("utf-8")).ignored_label, None);
    }
}
