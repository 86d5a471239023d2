//! Credentials, kept apart from the configuration and the database.
//!
//! The secrets file is TOML (`config/secrets.example.toml` shows every key). mpwatch
//! refuses a secrets file that group or others can access, and every secret value is a
//! [`Secret`], which prints as `***` in `Debug` and `Display`, so no secret reaches a log
//! line or an error message by accident. Errors about the file name keys and lines,
//! never values.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A value that must never be printed. Read it with [`Secret::expose`] only where it is
/// sent to the server.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for building a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Problems with the secrets file. No variant carries a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// The file could not be read.
    #[error("cannot read secrets file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Group or others may access the file.
    #[error("secrets file {path} is accessible by group or others (mode {mode:04o}); run: chmod 600 {path}")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not valid, named by key and line only.
    #[error("{}{}: {message}", path.display(), crate::config::key_and_line(key, location))]
    Parse {
        /// The file.
        path: PathBuf,
        /// The dotted key.
        key: String,
        /// ` (line N)` when known.
        location: String,
        /// What is wrong, without the value.
        message: String,
    },
    /// Two credential sets share a name.
    #[error("{path}: client credential name `{name}` is used twice")]
    DuplicateName {
        /// The file.
        path: PathBuf,
        /// The repeated name.
        name: String,
    },
}

/// Everything in the secrets file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Secrets {
    /// Client credential sets (from a real WeChat client), used in rotation for
    /// `profile_ext` lists and count requests.
    pub client: Vec<ClientCredential>,
    /// A logged-in official-account backend session, for `mp_backend` sources.
    pub backend: Option<BackendSession>,
    /// Where alerts go (`[[webhook]]`): their URLs carry tokens, so they live here.
    pub webhook: Vec<Webhook>,
    /// `mpwatch serve`'s access token (`[serve] token`).
    pub serve: Option<ServeSecrets>,
}

/// `[serve]` in the secrets file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSecrets {
    /// Every request must carry it (header or `?token=`); required to listen beyond
    /// loopback.
    pub token: Secret,
}

/// The body format of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `{"kind", "subject", "message", "at", "host"}` as JSON.
    #[default]
    Json,
    /// A DingTalk group robot (`{"msgtype": "text", "text": {"content": …}}`).
    Dingtalk,
    /// A WeCom (企业微信) group robot (`{"msgtype": "text", "text": {"content": …}}`).
    Wecom,
    /// A Feishu / Lark bot (`{"msg_type": "text", "content": {"text": …}}`).
    Feishu,
}

/// One alert receiver. `name` is a label for logs; the URL is a secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// A label shown in logs, e.g. `ops-dingtalk`.
    pub name: String,
    /// The URL to POST to (often with an access token in it).
    pub url: Secret,
    /// The body format.
    #[serde(default)]
    pub format: WebhookFormat,
    /// Only these alert kinds (`credential_expired`, `no_credentials`, `source_failing`,
    /// `job_failed`, `cooldown`); all when empty.
    #[serde(default)]
    pub kinds: Vec<String>,
}

/// One credential set captured from a WeChat client. `name` is a label, not a secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCredential {
    /// A label shown in logs and status, e.g. `phone-1`.
    pub name: String,
    /// `uin` parameter.
    pub uin: Secret,
    /// `key` parameter (lives about 30 minutes).
    pub key: Secret,
    /// `pass_ticket` parameter.
    pub pass_ticket: Secret,
    /// `appmsg_token` parameter (count requests).
    pub appmsg_token: Secret,
    /// Cookie header value, e.g. `wap_sid2=...`.
    #[serde(default)]
    pub cookie: Option<Secret>,
    /// The client's user agent (a MicroMessenger UA); a default is used when absent.
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// A logged-in backend session (`token` + cookie).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSession {
    /// The `token` query parameter.
    pub token: Secret,
    /// The Cookie header value.
    pub cookie: Secret,
}

impl Secrets {
    /// Reads the secrets file after checking that only its owner can access it.
    pub fn load(path: &Path) -> Result<Secrets, SecretsError> {
        check_permissions(path)?;
        let text = crate::files::read_text_limited(path, crate::files::MAX_CONFIG_BYTES)
            .map_err(|source| SecretsError::Read { path: path.to_path_buf(), source })?;
        Secrets::from_toml_str(&text, path)
    }

    /// Parses secrets text; `path` names it in errors.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Secrets, SecretsError> {
        let parse_error = |key: String, error: &toml::de::Error| {
            let message = error.message().trim();
            // Type errors quote the offending value; only structural messages are safe.
            let message = if message.starts_with("unknown field") || message.starts_with("missing field") {
                message.to_string()
            } else {
                "invalid value (not shown: secret values are never printed)".to_string()
            };
            SecretsError::Parse {
                path: path.to_path_buf(),
                key,
                location: error
                    .span()
                    .map(|span| {
                        let line =
                            text.as_bytes()[..span.start.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1;
                        format!(" (line {line})")
                    })
                    .unwrap_or_default(),
                message,
            }
        };
        let deserializer = toml::Deserializer::parse(text).map_err(|e| parse_error(".".to_string(), &e))?;
        let secrets: Secrets =
            serde_path_to_error::deserialize(deserializer).map_err(|e| parse_error(e.path().to_string(), e.inner()))?;
        let mut names: Vec<&str> = secrets.client.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(SecretsError::DuplicateName { path: path.to_path_buf(), name: pair[0].to_string() });
        }
        Ok(secrets)
    }
}

/// Refuses a file whose mode lets group or others in.
#[cfg(unix)]
pub fn check_permissions(path: &Path) -> Result<(), SecretsError> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = std::fs::metadata(path).map_err(|source| SecretsError::Read { path: path.to_path_buf(), source })?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretsError::TooOpen { path: path.to_path_buf(), mode });
    }
    Ok(())
}

/// Permission bits do not exist here; the check passes.
#[cfg(not(unix))]
pub fn check_permissions(_path: &Path) -> Result<(), SecretsError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[client]]
name = "phone-1"
uin = "MTIzNDU2Nzg5"
key = "verysecretkeyvalue0123456789"
pass_ticket = "passticketvalue"
appmsg_token = "tokenvalue_987"
cookie = "wap_sid2=cookievalue"

[backend]
token = "backendtoken42"
cookie = "slave_sid=backendcookie"
"#;

    #[test]
    fn debug_output_never_shows_a_secret() {
        let secrets = Secrets::from_toml_str(SAMPLE, Path::new("s.toml")).unwrap();
        let printed = format!("{secrets:?} {secrets:#?}");
        for value in [
            "MTIzNDU2Nzg5",
            "verysecretkeyvalue",
            "passticketvalue",
            "tokenvalue_987",
            "cookievalue",
            "backendtoken42",
            "backendcookie",
        ] {
            assert!(!printed.contains(value), "{value} leaked into {printed}");
        }
        assert!(printed.contains("phone-1"));
        assert_eq!(secrets.client[0].key.expose(), "verysecretkeyvalue0123456789");
        assert_eq!(secrets.client[0].key.to_string(), "***");
    }

    #[test]
    fn type_errors_do_not_echo_values() {
        let text =
            "[[client]]\nname = \"a\"\nuin = 12345678987\nkey = \"k\"\npass_ticket = \"p\"\nappmsg_token = \"t\"\n";
        let error = Secrets::from_toml_str(text, Path::new("s.toml")).unwrap_err().to_string();
        assert!(!error.contains("12345678987"), "{error}");
        assert!(error.contains("client[0].uin"), "{error}");
    }

    #[test]
    fn text_that_is_not_toml_is_named_by_line_only() {
        let error = Secrets::from_toml_str("[[client]]\nname = \n", Path::new("s.toml")).unwrap_err().to_string();
        assert!(error.starts_with("s.toml (line 2): "), "{error}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let one = "[[client]]\nname = \"a\"\nuin = \"u\"\nkey = \"k\"\npass_ticket = \"p\"\nappmsg_token = \"t\"\n";
        let error = Secrets::from_toml_str(&one.repeat(2), Path::new("s.toml")).unwrap_err();
        assert!(matches!(error, SecretsError::DuplicateName { .. }));
    }

    #[cfg(unix)]
    #[test]
    fn group_readable_file_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        std::fs::write(&path, SAMPLE).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let error = Secrets::load(&path).unwrap_err().to_string();
        assert!(error.contains("mode 0640"), "{error}");
        assert!(error.contains(&format!("chmod 600 {}", path.display())), "{error}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let secrets = Secrets::load(&path).unwrap();
        assert_eq!(secrets.client.len(), 1);
    }
}
