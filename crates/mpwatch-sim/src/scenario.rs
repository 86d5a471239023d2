//! How hostile the simulator is: quotas, credential lifetime, backend behaviour and
//! injected faults. Read from a TOML or JSON scenario file and changeable at run time
//! through `PUT /__sim/scenario`.
//!
//! ```toml
//! backend_lists = "frequency_control"   # or "ok"
//! credential_ttl = 1800                  # simulated seconds
//! verification = "page"                  # or "redirect" (302 to /mp/wappoc_appmsgcaptcha)
//!
//! [quota]                                # per client address and per credential
//! per_client = { limit = 600, window = 60 }
//! per_credential = { limit = 120, window = 60 }
//! cooldown = 900                         # simulated seconds blocked after a breach
//!
//! [[faults]]
//! endpoint = "article"                   # article, profile_ext, getappmsgext, comment, feed, backend, any
//! fault = { kind = "status", status = 503 }
//! probability = 0.1                      # or: next = 3 (the next three requests)
//! ```

use serde::{Deserialize, Serialize};

/// The request classes faults and quotas apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// Article pages (`/s`, `/s/<token>`).
    Article,
    /// `/mp/profile_ext`.
    ProfileExt,
    /// `/mp/getappmsgext`.
    Getappmsgext,
    /// `/mp/appmsg_comment`.
    Comment,
    /// Feeds.
    Feed,
    /// `/cgi-bin/appmsg`, `/cgi-bin/appmsgpublish`.
    Backend,
    /// Every endpoint (rules only).
    Any,
}

/// One way to misbehave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer with this status (429 carries `Retry-After`).
    Status {
        /// HTTP status.
        status: u16,
        /// `Retry-After` seconds (429 and 503).
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Drop the connection without an answer.
    Reset,
    /// Accept and never answer.
    Stall,
    /// Send the answer a few bytes per second.
    Trickle {
        /// Bytes per second.
        bytes_per_second: usize,
    },
    /// Announce the full length, send half, close.
    Truncate,
    /// A body of this many bytes (to test size caps).
    Oversize {
        /// Body size.
        bytes: usize,
    },
    /// Bytes that are not UTF-8 nor HTML.
    Garbage,
    /// A redirect to itself, forever.
    RedirectLoop,
    /// Gzip the answer (`Content-Encoding: gzip`).
    Gzip,
    /// The right (UTF-8) bytes under a `Content-Type` naming another charset, as
    /// misconfigured proxies and mirrors send them.
    WrongCharset {
        /// The charset the header claims, e.g. `gbk`.
        charset: String,
    },
}

/// When a rule fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Which requests.
    pub endpoint: Endpoint,
    /// What happens.
    pub fault: Fault,
    /// Chance per request (deterministic from the seed and the request number).
    #[serde(default)]
    pub probability: Option<f64>,
    /// Fire for the next N matching requests, then stop.
    #[serde(default)]
    pub next: Option<u64>,
}

/// A request limit over a window of simulated seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limit {
    /// Requests allowed per window.
    pub limit: u64,
    /// Window length, simulated seconds.
    pub window: i64,
}

/// Quotas; past one, the client or credential is blocked for `cooldown`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Quota {
    /// Per client address, on every endpoint.
    #[serde(default)]
    pub per_client: Option<Limit>,
    /// Per credential, on the credentialed endpoints.
    #[serde(default)]
    pub per_credential: Option<Limit>,
    /// Blocked time after a breach, simulated seconds.
    #[serde(default = "default_cooldown")]
    pub cooldown: i64,
}

fn default_cooldown() -> i64 {
    900
}

/// How backend lists answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BackendLists {
    /// `200013` to everyone, as the real ones do since mid-2026.
    #[default]
    FrequencyControl,
    /// Normal lists for any session token.
    Ok,
}

/// How a blocked client sees article pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStyle {
    /// The verification page itself, HTTP 200.
    #[default]
    Page,
    /// A 302 to `/mp/wappoc_appmsgcaptcha`.
    Redirect,
}

/// The whole scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Backend list behaviour.
    #[serde(default)]
    pub backend_lists: BackendLists,
    /// Lifetime of issued client credentials, simulated seconds.
    #[serde(default = "default_ttl")]
    pub credential_ttl: i64,
    /// Quotas.
    #[serde(default)]
    pub quota: Quota,
    /// Verification style.
    #[serde(default)]
    pub verification: VerificationStyle,
    /// Fault rules, first match wins.
    #[serde(default)]
    pub faults: Vec<FaultRule>,
}

fn default_ttl() -> i64 {
    30 * 60
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            backend_lists: BackendLists::default(),
            credential_ttl: default_ttl(),
            quota: Quota { cooldown: default_cooldown(), ..Quota::default() },
            verification: VerificationStyle::default(),
            faults: Vec::new(),
        }
    }
}

/// A scenario file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Unreadable file.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Bad content.
    #[error("scenario {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Scenario {
    /// Reads a `.toml` or `.json` scenario file.
    pub fn load(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
        let name = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: name.clone(), source })?;
        let parsed = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        } else {
            toml::from_str(&text).map_err(|e| e.message().to_string())
        };
        parsed.map_err(|message| ScenarioError::Parse { path: name, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example_parses() {
        let text = r#"
backend_lists = "frequency_control"
credential_ttl = 1800
verification = "page"
[quota]
per_client = { limit = 600, window = 60 }
per_credential = { limit = 120, window = 60 }
cooldown = 900
[[faults]]
endpoint = "article"
fault = { kind = "status", status = 503 }
probability = 0.1
[[faults]]
endpoint = "getappmsgext"
fault = { kind = "trickle", bytes_per_second = 10 }
next = 3
"#;
        let scenario: Scenario = toml::from_str(text).unwrap();
        assert_eq!(scenario.faults.len(), 2);
        assert_eq!(scenario.quota.per_client, Some(Limit { limit: 600, window: 60 }));
        assert_eq!(scenario.faults[1].next, Some(3));
    }
}
