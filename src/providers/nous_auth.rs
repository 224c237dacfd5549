//! The Nous Portal login written by the Hermes CLI (SPEC §5.4): the bearer comes from
//! `$HERMES_HOME/auth.json` and is refreshed before it expires or after a 401. Refresh
//! tokens are single use, so refreshing is single-flight in the process (an async
//! lock) and across processes (an exclusive lock on `auth.lock`), and the file is
//! re-read under the lock so a token another process already refreshed is adopted.

use super::client::HttpClient;
use super::error::ProviderError;
use super::settings::NousSettings;
use crate::clock;
use crate::model::error_kind::ErrorKind;
use crate::secret::Secret;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Refresh when the token expires within this long.
pub const REFRESH_MARGIN_SECS: i64 = 120;
const DEFAULT_CLIENT_ID: &str = "hermes-cli";
const REFRESH_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for another process that holds `auth.lock`.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);
const RELOGIN: &str = "log in again with the Hermes CLI";

#[derive(Clone)]
struct Token {
    access: Secret,
    refresh: Option<Secret>,
    /// Seconds since the epoch; from the JWT `exp` claim when the token is a JWT.
    expires_at: Option<i64>,
    inference_base_url: String,
    portal_url: String,
    client_id: String,
}

/// What an inference call needs.
#[derive(Clone)]
pub struct Bearer {
    pub token: Secret,
    pub base_url: String,
}

pub struct NousAuth {
    settings: NousSettings,
    auth_file: PathBuf,
    /// The in-process single flight: held across the whole refresh.
    state: tokio::sync::Mutex<Option<Token>>,
    /// Set when the login is dead (a revoked or reused refresh token).
    unusable: Mutex<Option<String>>,
    /// The tokens in use, for masking in anything an upstream sends back.
    live_secrets: Mutex<Vec<String>>,
}

fn config_error(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorKind::Config, message)
}

impl NousAuth {
    /// `None` when there is no Hermes home to look in.
    pub fn new(settings: &NousSettings) -> Option<NousAuth> {
        let auth_file = settings.auth_file()?;
        Some(NousAuth {
            settings: settings.clone(),
            auth_file,
            state: tokio::sync::Mutex::new(None),
            unusable: Mutex::new(None),
            live_secrets: Mutex::new(Vec::new()),
        })
    }

    pub fn auth_file(&self) -> &Path {
        &self.auth_file
    }

    /// Whether the login can be used now, with a human reason when not.
    pub fn status(&self) -> Result<(), String> {
        if let Some(reason) = self
            .unusable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(reason);
        }
        self.read_file().map(|_| ()).map_err(|e| e.message)
    }

    pub fn live_secrets(&self) -> Vec<String> {
        self.live_secrets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The bearer for the next call, refreshed first when it expires within 120 s.
    pub async fn bearer(&self, client: &HttpClient) -> Result<Bearer, ProviderError> {
        self.obtain(client, expiring).await
    }

    /// After a 401 with `used`: refresh once, unless another caller already did.
    pub async fn after_unauthorized(
        &self,
        client: &HttpClient,
        used: &Secret,
    ) -> Result<Bearer, ProviderError> {
        self.obtain(client, |current| current.access == *used).await
    }

    /// Under the single-flight lock: load the login, refresh it when `needs_refresh`
    /// says so, and hand out its bearer.
    async fn obtain(
        &self,
        client: &HttpClient,
        needs_refresh: impl FnOnce(&Token) -> bool,
    ) -> Result<Bearer, ProviderError> {
        self.ensure_usable()?;
        let mut state = self.state.lock().await;
        // A caller that waited here while another found the login dead must not
        // spend the (single-use) refresh token again.
        self.ensure_usable()?;
        let current = match state.take() {
            Some(t) => t,
            None => self.read_file()?,
        };
        let token = if needs_refresh(&current) {
            self.refresh(client, &current).await?
        } else {
            current
        };
        let bearer = Bearer {
            token: token.access.clone(),
            base_url: token.inference_base_url.clone(),
        };
        self.remember(&token);
        *state = Some(token);
        Ok(bearer)
    }

    fn ensure_usable(&self) -> Result<(), ProviderError> {
        match self
            .unusable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            Some(reason) => Err(ProviderError::new(ErrorKind::Auth, reason)),
            None => Ok(()),
        }
    }

    fn remember(&self, token: &Token) {
        let mut s = vec![token.access.expose().to_string()];
        if let Some(r) = &token.refresh {
            s.push(r.expose().to_string());
        }
        let mut live = self.live_secrets.lock().unwrap_or_else(|p| p.into_inner());
        for v in s {
            if !live.contains(&v) {
                live.push(v);
            }
        }
    }

    /// Refreshes under the cross-process lock. `stale` is the token the caller found
    /// unusable; a different, fresh token on disk means another process refreshed.
    async fn refresh(&self, client: &HttpClient, stale: &Token) -> Result<Token, ProviderError> {
        let lock_path = self.auth_file.with_file_name("auth.lock");
        let _lock = lock_exclusive(lock_path).await?;
        let on_disk = self.read_file()?;
        if on_disk.access != stale.access && !expiring(&on_disk) {
            crate::log_info!("nous: adopted a token another process refreshed");
            return Ok(on_disk);
        }
        let refresh_token = on_disk
            .refresh
            .clone()
            .ok_or_else(|| self.dead("the Hermes login has no refresh token"))?;
        let answer = self
            .call_token_endpoint(client, &on_disk, &refresh_token)
            .await?;
        let now = clock::now_epoch_secs();
        let access = answer
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ProviderError::new(
                    ErrorKind::BadResponse,
                    "the portal's token answer has no access_token",
                )
            })?;
        let rotated = answer
            .get("refresh_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let expires_in = answer.get("expires_in").and_then(Value::as_i64);
        let inference = answer
            .get("inference_base_url")
            .and_then(Value::as_str)
            .filter(|u| self.trusted_inference_url(u))
            .map(|u| u.trim_end_matches('/').to_string());
        let mut token = Token {
            access: Secret::new(access),
            refresh: Some(rotated.map_or(refresh_token, Secret::new)),
            expires_at: None,
            inference_base_url: inference.unwrap_or_else(|| on_disk.inference_base_url.clone()),
            portal_url: on_disk.portal_url.clone(),
            client_id: on_disk.client_id.clone(),
        };
        token.expires_at = jwt_exp(access).or(expires_in.map(|s| now + s));
        self.write_back(&token, expires_in, now)?;
        crate::log_info!("nous: refreshed the Hermes login token");
        Ok(token)
    }

    fn dead(&self, why: &str) -> ProviderError {
        let message = format!("{why}: {RELOGIN} ({})", self.auth_file.display());
        *self.unusable.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.clone());
        crate::log_warn!("nous: {message}");
        ProviderError::new(ErrorKind::Auth, message)
    }

    async fn call_token_endpoint(
        &self,
        client: &HttpClient,
        token: &Token,
        refresh: &Secret,
    ) -> Result<Value, ProviderError> {
        let url = format!("{}/api/oauth/token", token.portal_url);
        let body = format!(
            "grant_type=refresh_token&client_id={}",
            form_encode(&token.client_id)
        );
        let mut refresh_header = HeaderValue::from_str(refresh.expose())
            .map_err(|_| self.dead("the stored refresh token is not a valid header value"))?;
        refresh_header.set_sensitive(true);
        let request = hyper::Request::post(&url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .header("x-nous-refresh-token", refresh_header)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| config_error(format!("invalid Nous portal URL {url}: {e}")))?;
        let response = tokio::time::timeout(REFRESH_TIMEOUT, client.request(request))
            .await
            .map_err(|_| {
                ProviderError::new(
                    ErrorKind::Timeout,
                    "the Nous portal did not answer the token refresh in time",
                )
            })?
            .map_err(|e| {
                ProviderError::new(
                    ErrorKind::Network,
                    format!("cannot reach the Nous portal: {e}"),
                )
            })?;
        let status = response.status();
        let bytes = tokio::time::timeout(
            REFRESH_TIMEOUT,
            http_body_util::Limited::new(response.into_body(), 256 << 10).collect(),
        )
        .await
        .map_err(|_| {
            ProviderError::new(ErrorKind::Timeout, "the Nous portal's token answer stalled")
        })?
        .map_err(|_| {
            ProviderError::new(
                ErrorKind::BadResponse,
                "the Nous portal's token answer could not be read",
            )
        })?
        .to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let code = value.get("error").and_then(Value::as_str).unwrap_or("");
            if matches!(
                code,
                "invalid_grant" | "invalid_token" | "refresh_token_reused"
            ) {
                return Err(self.dead(&format!(
                    "the Hermes login was rejected by the portal ({code})"
                )));
            }
            let detail = value
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or(code);
            let mut e = ProviderError::new(
                if status.as_u16() == 429 {
                    ErrorKind::RateLimit
                } else {
                    ErrorKind::Upstream
                },
                format!(
                    "the Nous portal refused the token refresh ({}): {detail}",
                    status.as_u16()
                ),
            );
            e.status = Some(status.as_u16());
            return Err(e);
        }
        if !value.is_object() {
            return Err(ProviderError::new(
                ErrorKind::BadResponse,
                "the Nous portal's token answer is not JSON",
            ));
        }
        Ok(value)
    }

    /// A portal-returned inference URL is used only if it is https on a
    /// `*.nousresearch.com` host, or equal to an explicitly set `NOUS_BASE_URL`.
    fn trusted_inference_url(&self, url: &str) -> bool {
        let url = url.trim_end_matches('/');
        if self.settings.base_url_explicit {
            return url == self.settings.base_url;
        }
        trusted_nous_host(url)
    }

    /// Reads auth.json; every problem is a clear message, never a panic.
    fn read_file(&self) -> Result<Token, ProviderError> {
        let path = &self.auth_file;
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                config_error(format!(
                    "no Hermes login at {}: log in with the Hermes CLI or set NOUS_API_KEY",
                    path.display()
                ))
            } else {
                config_error(format!("cannot read {}: {e}", path.display()))
            }
        })?;
        let root: Value = serde_json::from_str(&text).map_err(|e| {
            config_error(format!(
                "{} is not valid JSON ({e}): {RELOGIN}",
                path.display()
            ))
        })?;
        let nous = root
            .pointer("/providers/nous")
            .filter(|v| v.is_object())
            .ok_or_else(|| {
                config_error(format!(
                    "{} has no Nous login (providers.nous): {RELOGIN}",
                    path.display()
                ))
            })?;
        let text_field = |k: &str| {
            nous.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let access = text_field("access_token").ok_or_else(|| {
            config_error(format!(
                "{} has no providers.nous.access_token: {RELOGIN}",
                path.display()
            ))
        })?;
        let expires_at =
            jwt_exp(access).or_else(|| text_field("expires_at").and_then(clock::parse_iso8601));
        let inference_base_url = if self.settings.base_url_explicit {
            self.settings.base_url.clone()
        } else {
            text_field("inference_base_url")
                .filter(|u| trusted_nous_host(u))
                .map_or_else(
                    || self.settings.base_url.clone(),
                    |u| u.trim_end_matches('/').to_string(),
                )
        };
        let portal_url = if self.settings.portal_url_explicit {
            self.settings.portal_url.clone()
        } else {
            text_field("portal_base_url")
                .filter(|u| u.starts_with("https://"))
                .map_or_else(
                    || self.settings.portal_url.clone(),
                    |u| u.trim_end_matches('/').to_string(),
                )
        };
        Ok(Token {
            access: Secret::new(access),
            refresh: text_field("refresh_token").map(Secret::new),
            expires_at,
            inference_base_url,
            portal_url,
            client_id: text_field("client_id")
                .unwrap_or(DEFAULT_CLIENT_ID)
                .to_string(),
        })
    }

    /// Writes the refreshed fields back atomically (temp file in the same folder,
    /// fsync, rename, mode 0600), leaving every other field and provider as it was.
    fn write_back(
        &self,
        token: &Token,
        expires_in: Option<i64>,
        now: i64,
    ) -> Result<(), ProviderError> {
        let path = &self.auth_file;
        let io_err = |e: std::io::Error| {
            ProviderError::new(
                ErrorKind::Config,
                format!("cannot update {}: {e}", path.display()),
            )
        };
        let text = std::fs::read_to_string(path).map_err(io_err)?;
        let mut root: Value = serde_json::from_str(&text)
            .map_err(|e| config_error(format!("{} is not valid JSON ({e})", path.display())))?;
        let stamp = clock::iso8601_utc_offset(now);
        if let Some(obj) = root.as_object_mut() {
            obj.insert("updated_at".into(), Value::String(stamp.clone()));
        }
        let Some(nous) = root
            .pointer_mut("/providers/nous")
            .and_then(Value::as_object_mut)
        else {
            return Err(config_error(format!(
                "{} lost its Nous login while refreshing",
                path.display()
            )));
        };
        nous.insert(
            "access_token".into(),
            Value::String(token.access.expose().to_string()),
        );
        if let Some(r) = &token.refresh {
            nous.insert(
                "refresh_token".into(),
                Value::String(r.expose().to_string()),
            );
        }
        if let Some(exp) = token.expires_at {
            nous.insert(
                "expires_at".into(),
                Value::String(clock::iso8601_utc_offset(exp)),
            );
        }
        if let Some(secs) = expires_in {
            nous.insert("expires_in".into(), Value::from(secs));
        }
        nous.insert("obtained_at".into(), Value::String(stamp));
        let mut out =
            serde_json::to_string_pretty(&root).map_err(|e| config_error(e.to_string()))?;
        out.push('\n');
        write_atomically(path, out.as_bytes()).map_err(io_err)
    }
}

fn expiring(token: &Token) -> bool {
    token
        .expires_at
        .is_some_and(|exp| exp - clock::now_epoch_secs() <= REFRESH_MARGIN_SECS)
}

pub fn trusted_nous_host(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = authority
        .split(':')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    host.ends_with(".nousresearch.com")
}

/// The `exp` claim of a JWT access token, if it is one.
pub fn jwt_exp(token: &str) -> Option<i64> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let std_alphabet: String = payload
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect();
    let bytes = crate::util::base64_decode(std_alphabet.as_bytes())?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims
        .get("exp")
        .and_then(|e| e.as_i64().or_else(|| e.as_f64().map(|f| f as i64)))
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Takes an exclusive lock on `path` (created if missing), waiting for another
/// process that holds it; released when the returned file is dropped.
async fn lock_exclusive(path: PathBuf) -> Result<File, ProviderError> {
    let shown = path.display().to_string();
    let task = tokio::task::spawn_blocking(move || -> std::io::Result<File> {
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).read(true).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path)?;
        file.lock()?;
        Ok(file)
    });
    match tokio::time::timeout(LOCK_TIMEOUT, task).await {
        Ok(Ok(Ok(file))) => Ok(file),
        Ok(Ok(Err(e))) => Err(config_error(format!("cannot lock {shown}: {e}"))),
        Ok(Err(e)) => Err(config_error(format!("cannot lock {shown}: {e}"))),
        Err(_) => Err(ProviderError::new(
            ErrorKind::Timeout,
            format!("another process held {shown} for over 30 s"),
        )),
    }
}

fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("auth.json");
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        crate::ids::new_run_id()
    ));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.create_new(true).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
#[path = "nous_auth_tests.rs"]
mod tests;
