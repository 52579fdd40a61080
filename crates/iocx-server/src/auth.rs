//! Who is asking: API tokens, browser sessions, HTTP basic (for TAXII clients), roles, login
//! rate limits and password hashing.
//!
//! - Passwords are argon2id PHC strings (the `argon2` crate's defaults: 19 MiB, 2 passes),
//!   hashed and verified on blocking threads.
//! - API tokens are `iocx_` + 32 random bytes (base64url); the store keeps only their keyed
//!   hash (HMAC-SHA-256 under a key derived from the master key) and the first characters.
//! - Sessions are a random cookie (`iocx_session`, HttpOnly, SameSite=Strict, Secure with TLS)
//!   stored as a keyed hash; state-changing requests in a session must carry the session's CSRF
//!   token in `X-CSRF-Token`. Token and basic requests need no CSRF token: browsers do not send
//!   them on their own.
//! - Failed logins are limited per client address and per user name.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use base64::Engine as _;
use iocx_model::Timestamp;
use iocx_store::{NewAudit, Role, User};
use rand::RngCore;

use crate::App;
use crate::error::{ApiError, ApiResult};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "iocx_session";
/// The header carrying a session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How a request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `Authorization: Bearer iocx_…`.
    Token,
    /// The session cookie.
    Session,
    /// `Authorization: Basic`.
    Basic,
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user.
    pub user: String,
    /// The effective role (a token's role never exceeds its user's).
    pub role: Role,
    /// For the audit log: `user:NAME` or `token:TOKEN@USER`.
    pub actor: String,
    /// How it authenticated.
    pub via: Via,
    /// The session's CSRF token (sessions only), for pages to send back.
    pub csrf: Option<String>,
}

impl Principal {
    /// Refuses callers below `role`.
    ///
    /// # Errors
    /// 403 naming the role needed.
    pub fn require(&self, role: Role) -> ApiResult<()> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {role} role; {} has {}",
                self.actor, self.role
            )))
        }
    }
}

/// A fresh random secret as base64url (no padding).
pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Hashes a password (argon2id) on a blocking thread.
///
/// # Errors
/// When hashing fails (it does not, for passwords within the length checked here).
pub async fn hash_password(password: String) -> ApiResult<String> {
    check_password(&password)?;
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(ApiError::internal)?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)?
}

/// Checks a new password's length.
///
/// # Errors
/// 400 on `password`.
pub fn check_password(password: &str) -> ApiResult<()> {
    let n = password.chars().count();
    if !(12..=256).contains(&n) {
        return Err(ApiError::invalid(
            "password",
            "passwords have 12 to 256 characters",
        ));
    }
    Ok(())
}

/// Verifies `password` against a PHC hash on a blocking thread.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// Failed-login counters per client address and per user name, over one-minute windows.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl LoginLimiter {
    /// Whether `key` may try again (fewer than `limit` failures in the current minute).
    pub fn allowed(&self, key: &str, limit: u32) -> bool {
        let Ok(w) = self.windows.lock() else {
            return false;
        };
        match w.get(key) {
            Some((start, n)) if start.elapsed() < Duration::from_secs(60) => *n < limit,
            _ => true,
        }
    }

    /// Counts a failure for `key`.
    pub fn failed(&self, key: &str) {
        if let Ok(mut w) = self.windows.lock() {
            if w.len() > 100_000 {
                w.retain(|_, (start, _)| start.elapsed() < Duration::from_secs(60));
            }
            let entry = w.entry(key.to_string()).or_insert((Instant::now(), 0));
            if entry.0.elapsed() >= Duration::from_secs(60) {
                *entry = (Instant::now(), 0);
            }
            entry.1 += 1;
        }
    }

    /// Forgets `key`'s failures (after a success).
    pub fn clear(&self, key: &str) {
        if let Ok(mut w) = self.windows.lock() {
            w.remove(key);
        }
    }
}

/// Checks a user name and password with rate limits; the user on success.
///
/// # Errors
/// 429 when limited, 401 otherwise (the same answer for an unknown user and a wrong password).
pub async fn login(
    app: &App,
    client: Option<IpAddr>,
    name: &str,
    password: &str,
) -> ApiResult<User> {
    let limit = app.config.auth.login_attempts_per_minute;
    let ip_key = format!(
        "ip:{}",
        client.map_or_else(|| "?".to_string(), |c| c.to_string())
    );
    let user_key = format!("user:{name}");
    if !app.logins.allowed(&ip_key, limit) || !app.logins.allowed(&user_key, limit) {
        return Err(ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many failed logins; wait a minute",
        ));
    }
    let n = name.to_string();
    let found = app.store().call(move |s| s.user(&n)).await?;
    // Verify against a dummy hash for unknown users, so timing does not tell names apart.
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), h),
        None => (None, app.dummy_hash.clone()),
    };
    let ok = verify_password(password.to_string(), hash).await;
    match user {
        Some(u) if ok && !u.disabled => {
            app.logins.clear(&user_key);
            let id = u.id;
            app.store()
                .call(move |s| s.touch_login(id, Timestamp::now()))
                .await?;
            Ok(u)
        }
        _ => {
            app.logins.failed(&ip_key);
            app.logins.failed(&user_key);
            Err(ApiError::unauthenticated("wrong user name or password"))
        }
    }
}

fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The client's address, when the connection layer recorded it.
pub fn client_addr(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

impl FromRequestParts<Arc<App>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> ApiResult<Principal> {
        let auth = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(auth) = auth {
            if let Some(token) = auth
                .strip_prefix("Bearer ")
                .or_else(|| auth.strip_prefix("bearer "))
            {
                return token_principal(app, token.trim()).await;
            }
            if let Some(basic) = auth
                .strip_prefix("Basic ")
                .or_else(|| auth.strip_prefix("basic "))
            {
                return basic_principal(app, client_addr(parts), basic.trim()).await;
            }
            return Err(ApiError::unauthenticated(
                "Authorization must be Bearer (an API token) or Basic",
            ));
        }
        if let Some(value) = cookie(parts, SESSION_COOKIE) {
            let hash = app.engine.vault.keyed_hash("session", value.as_bytes());
            let session = app
                .store()
                .call(move |s| s.session(&hash, Timestamp::now()))
                .await?
                .ok_or_else(|| ApiError::unauthenticated("the session ended; log in again"))?;
            if session.user.disabled {
                return Err(ApiError::unauthenticated("the user is disabled"));
            }
            let unsafe_method =
                !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
            if unsafe_method {
                let sent = parts
                    .headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
                    return Err(ApiError::forbidden(
                        "missing or wrong X-CSRF-Token for this session",
                    ));
                }
            }
            return Ok(Principal {
                actor: format!("user:{}", session.user.name),
                user: session.user.name,
                role: session.user.role,
                via: Via::Session,
                csrf: Some(session.csrf),
            });
        }
        Err(ApiError::unauthenticated(
            "authenticate with an API token (Authorization: Bearer …), a session, or basic auth",
        ))
    }
}

async fn token_principal(app: &App, token: &str) -> ApiResult<Principal> {
    if !token.starts_with("iocx_") || token.len() > 200 {
        return Err(ApiError::unauthenticated("not an iocx API token"));
    }
    let hash = app.engine.vault.keyed_hash("token", token.as_bytes());
    let (t, user) = app
        .store()
        .call(move |s| s.token_by_hash(&hash))
        .await?
        .ok_or_else(|| ApiError::unauthenticated("unknown API token"))?;
    let now = Timestamp::now();
    if t.revoked_at.is_some() {
        return Err(ApiError::unauthenticated(format!(
            "API token {:?} was revoked",
            t.name
        )));
    }
    if t.expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::unauthenticated(format!(
            "API token {:?} expired",
            t.name
        )));
    }
    if user.disabled {
        return Err(ApiError::unauthenticated("the token's user is disabled"));
    }
    let id = t.id;
    if t.last_used_at.is_none_or(|l| l.0 < now.0 - 60) {
        let _ = app.store().call(move |s| s.touch_token(id, now)).await;
    }
    Ok(Principal {
        actor: format!("token:{}@{}", t.name, user.name),
        user: user.name,
        role: t.role.min(user.role),
        via: Via::Token,
        csrf: None,
    })
}

async fn basic_principal(app: &App, client: Option<IpAddr>, encoded: &str) -> ApiResult<Principal> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::unauthenticated("malformed basic credentials"))?;
    let (name, password) = decoded
        .split_once(':')
        .ok_or_else(|| ApiError::unauthenticated("malformed basic credentials"))?;
    // An API token may be given as the basic password (TAXII clients that only speak basic).
    if password.starts_with("iocx_") {
        return token_principal(app, password).await;
    }
    let user = login(app, client, name, password).await?;
    Ok(Principal {
        actor: format!("user:{}", user.name),
        user: user.name,
        role: user.role,
        via: Via::Basic,
        csrf: None,
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Masks secret-looking keys in a JSON value for the audit log.
pub fn mask(mut value: serde_json::Value) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    let k = k.to_ascii_lowercase();
                    if ["password", "secret", "token", "secrets", "key", "api_key"]
                        .iter()
                        .any(|s| k == *s || k.ends_with(&format!("_{s}")))
                        && !v.is_null()
                        && !v.is_boolean()
                    {
                        *v = serde_json::Value::String("********".into());
                    } else {
                        walk(v);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

impl App {
    /// Writes an audit entry (failures are logged, never fail the request that succeeded).
    pub async fn audit(
        &self,
        who: &Principal,
        action: &str,
        target: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) {
        let entry = NewAudit {
            actor: who.actor.clone(),
            action: action.to_string(),
            target: target.to_string(),
            before: before.map(|v| mask(v).to_string()),
            after: after.map(|v| mask(v).to_string()),
        };
        if let Err(e) = self.store().call(move |s| s.audit(&entry)).await {
            tracing::error!(error = %e, action, target, "Could not write the audit log");
        }
    }

    /// Creates an API token for `user`; the token text (shown once) and its record.
    ///
    /// # Errors
    /// 400 on a bad name or expiry; store errors.
    pub async fn create_token(
        &self,
        user: &str,
        name: &str,
        role: Role,
        expires_at: Option<Timestamp>,
    ) -> ApiResult<(String, iocx_store::ApiToken)> {
        if name.trim().is_empty() || name.len() > 100 {
            return Err(ApiError::invalid(
                "name",
                "a token needs a name of 1 to 100 characters",
            ));
        }
        if expires_at.is_some_and(|e| e <= Timestamp::now()) {
            return Err(ApiError::invalid("expires_at", "the expiry is in the past"));
        }
        let token = format!("iocx_{}", random_secret(32));
        let new = iocx_store::NewToken {
            name: name.trim().to_string(),
            user: user.to_string(),
            role,
            hash: self.engine.vault.keyed_hash("token", token.as_bytes()),
            prefix: token.chars().take(12).collect(),
            expires_at,
        };
        let saved = self.store().call(move |s| s.create_token(&new)).await?;
        Ok((token, saved))
    }
}

/// Creates the first admin when there are no users: the password from `IOCX_ADMIN_PASSWORD`,
/// else a random one, returned to be printed once.
///
/// # Errors
/// Store errors; a too-short `IOCX_ADMIN_PASSWORD`.
pub async fn bootstrap_admin(app: &App) -> anyhow::Result<Option<String>> {
    if app.store().call(|s| s.user_count()).await? > 0 {
        return Ok(None);
    }
    let (password, generated) = match std::env::var("IOCX_ADMIN_PASSWORD") {
        Ok(p) => (p, false),
        Err(_) => (random_secret(15), true),
    };
    let hash = hash_password(password.clone())
        .await
        .map_err(|e| anyhow::anyhow!("IOCX_ADMIN_PASSWORD: {}", e.message))?;
    app.store()
        .call(move |s| s.create_user("admin", &hash, Role::Admin))
        .await?;
    Ok(generated.then_some(password))
}
