//! Users, API tokens, browser sessions and the audit log: written once, for both backends (see
//! [`crate::db`]). Passwords arrive here already hashed and tokens and session cookies as keyed
//! hashes; the store never sees a secret in the clear.

use iocx_model::Timestamp;

use crate::db::{Db, Val};
use crate::error::{Result, StoreError};
use crate::rows::RowAccess;
use crate::types::{
    ApiToken, AuditEntry, AuditQuery, IngestHour, NewAudit, NewToken, Role, Session, User,
};

const USER_COLUMNS: &str =
    "id, name, role, disabled, created_at, updated_at, last_login_at, password_hash";

fn role(text: &str) -> Result<Role> {
    Role::parse(text).ok_or_else(|| StoreError::Corrupt {
        table: "app_user",
        detail: format!("unknown role {text:?}"),
    })
}

/// A user row and its password hash.
fn user_row(r: &dyn RowAccess) -> Result<(User, String)> {
    Ok((
        User {
            id: r.int(0)?,
            name: r.text(1)?,
            role: role(&r.text(2)?)?,
            disabled: r.int(3)? != 0,
            created_at: Timestamp(r.int(4)?),
            updated_at: Timestamp(r.int(5)?),
            last_login_at: r.opt_int(6)?.map(Timestamp),
        },
        r.text(7)?,
    ))
}

/// How many users exist.
pub(crate) fn user_count(db: &mut impl Db) -> Result<u64> {
    Ok(db
        .one("SELECT COUNT(*) FROM app_user", &[], |r| r.int(0))?
        .unwrap_or(0) as u64)
}

/// Creates a user.
pub(crate) fn create_user(
    db: &mut impl Db,
    name: &str,
    password_hash: &str,
    role: Role,
) -> Result<User> {
    if user(db, name)?.is_some() {
        return Err(StoreError::Conflict(format!(
            "a user called {name:?} exists"
        )));
    }
    let now = Timestamp::now().0;
    db.exec(
        "INSERT INTO app_user (name, password_hash, role, disabled, created_at, updated_at) \
         VALUES ($1, $2, $3, 0, $4, $4)",
        &[
            Val::T(name),
            Val::T(password_hash),
            Val::T(role.as_str()),
            Val::I(now),
        ],
    )?;
    user(db, name)?
        .map(|(u, _)| u)
        .ok_or_else(|| StoreError::Task("the new user vanished".into()))
}

/// The user called `name`, with the password hash.
pub(crate) fn user(db: &mut impl Db, name: &str) -> Result<Option<(User, String)>> {
    db.one(
        &format!("SELECT {USER_COLUMNS} FROM app_user WHERE name = $1"),
        &[Val::T(name)],
        user_row,
    )
}

/// Every user, by name.
pub(crate) fn users(db: &mut impl Db) -> Result<Vec<User>> {
    db.all(
        &format!("SELECT {USER_COLUMNS} FROM app_user ORDER BY name"),
        &[],
        |r| user_row(r).map(|(u, _)| u),
    )
}

/// Changes a user's role, password hash or disabled flag; `None` leaves a field alone.
pub(crate) fn update_user(
    db: &mut impl Db,
    name: &str,
    role: Option<Role>,
    password_hash: Option<&str>,
    disabled: Option<bool>,
) -> Result<Option<User>> {
    let Some((current, hash)) = user(db, name)? else {
        return Ok(None);
    };
    let role = role.unwrap_or(current.role);
    let hash = password_hash.unwrap_or(&hash);
    let disabled = disabled.unwrap_or(current.disabled);
    db.exec(
        "UPDATE app_user SET role = $2, password_hash = $3, disabled = $4, updated_at = $5 WHERE id = $1",
        &[
            Val::I(current.id),
            Val::T(role.as_str()),
            Val::T(hash),
            Val::I(i64::from(disabled)),
            Val::I(Timestamp::now().0),
        ],
    )?;
    if disabled || password_hash.is_some() {
        // A disabled user or a new password ends every browser session.
        db.exec(
            "DELETE FROM app_session WHERE user_id = $1",
            &[Val::I(current.id)],
        )?;
    }
    Ok(user(db, name)?.map(|(u, _)| u))
}

/// Deletes a user with their tokens and sessions.
pub(crate) fn delete_user(db: &mut impl Db, name: &str) -> Result<bool> {
    let Some((u, _)) = user(db, name)? else {
        return Ok(false);
    };
    db.exec("DELETE FROM api_token WHERE user_id = $1", &[Val::I(u.id)])?;
    db.exec(
        "DELETE FROM app_session WHERE user_id = $1",
        &[Val::I(u.id)],
    )?;
    Ok(db.exec("DELETE FROM app_user WHERE id = $1", &[Val::I(u.id)])? == 1)
}

/// Notes a successful login.
pub(crate) fn touch_login(db: &mut impl Db, user_id: i64, at: Timestamp) -> Result<()> {
    db.exec(
        "UPDATE app_user SET last_login_at = $2 WHERE id = $1",
        &[Val::I(user_id), Val::I(at.0)],
    )?;
    Ok(())
}

// ----- tokens -----

const TOKEN_COLUMNS: &str = "t.id, t.name, u.name, t.role, t.prefix, t.created_at, t.expires_at, \
     t.last_used_at, t.revoked_at";

fn token_row(r: &dyn RowAccess) -> Result<ApiToken> {
    Ok(ApiToken {
        id: r.int(0)?,
        name: r.text(1)?,
        user: r.text(2)?,
        role: role(&r.text(3)?)?,
        prefix: r.text(4)?,
        created_at: Timestamp(r.int(5)?),
        expires_at: r.opt_int(6)?.map(Timestamp),
        last_used_at: r.opt_int(7)?.map(Timestamp),
        revoked_at: r.opt_int(8)?.map(Timestamp),
    })
}

/// Creates a token for the user called `new.user`.
pub(crate) fn create_token(db: &mut impl Db, new: &NewToken) -> Result<ApiToken> {
    let Some((u, _)) = user(db, &new.user)? else {
        return Err(StoreError::NotFound {
            what: "user",
            name: new.user.clone(),
        });
    };
    db.exec(
        "INSERT INTO api_token (name, user_id, role, hash, prefix, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            Val::T(&new.name),
            Val::I(u.id),
            Val::T(new.role.as_str()),
            Val::T(&new.hash),
            Val::T(&new.prefix),
            Val::I(Timestamp::now().0),
            Val::OptI(new.expires_at.map(|t| t.0)),
        ],
    )?;
    db.one(
        &format!(
            "SELECT {TOKEN_COLUMNS} FROM api_token t JOIN app_user u ON u.id = t.user_id WHERE t.hash = $1"
        ),
        &[Val::T(&new.hash)],
        token_row,
    )?
    .ok_or_else(|| StoreError::Task("the new token vanished".into()))
}

/// The token with keyed hash `hash` and its user (revoked and expired ones too: callers decide).
pub(crate) fn token_by_hash(db: &mut impl Db, hash: &str) -> Result<Option<(ApiToken, User)>> {
    let Some(token) = db.one(
        &format!(
            "SELECT {TOKEN_COLUMNS} FROM api_token t JOIN app_user u ON u.id = t.user_id WHERE t.hash = $1"
        ),
        &[Val::T(hash)],
        token_row,
    )?
    else {
        return Ok(None);
    };
    Ok(user(db, &token.user)?.map(|(u, _)| (token, u)))
}

/// Tokens, newest first; only `user`'s when given.
pub(crate) fn tokens(db: &mut impl Db, user: Option<&str>) -> Result<Vec<ApiToken>> {
    db.all(
        &format!(
            "SELECT {TOKEN_COLUMNS} FROM api_token t JOIN app_user u ON u.id = t.user_id \
             WHERE ($1 = '' OR u.name = $1) ORDER BY t.id DESC"
        ),
        &[Val::T(user.unwrap_or(""))],
        token_row,
    )
}

/// The token with `id`.
pub(crate) fn token(db: &mut impl Db, id: i64) -> Result<Option<ApiToken>> {
    db.one(
        &format!(
            "SELECT {TOKEN_COLUMNS} FROM api_token t JOIN app_user u ON u.id = t.user_id WHERE t.id = $1"
        ),
        &[Val::I(id)],
        token_row,
    )
}

/// Revokes a token; `false` when it does not exist or was revoked already.
pub(crate) fn revoke_token(db: &mut impl Db, id: i64, at: Timestamp) -> Result<bool> {
    Ok(db.exec(
        "UPDATE api_token SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        &[Val::I(id), Val::I(at.0)],
    )? == 1)
}

/// Notes a token's use (at most once a minute per token, to keep reads cheap).
pub(crate) fn touch_token(db: &mut impl Db, id: i64, at: Timestamp) -> Result<()> {
    db.exec(
        "UPDATE api_token SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
        &[Val::I(id), Val::I(at.0), Val::I(at.0 - 60)],
    )?;
    Ok(())
}

// ----- sessions -----

/// Starts a session.
pub(crate) fn create_session(
    db: &mut impl Db,
    hash: &str,
    user_id: i64,
    csrf: &str,
    expires_at: Timestamp,
) -> Result<()> {
    db.exec(
        "DELETE FROM app_session WHERE expires_at < $1",
        &[Val::I(Timestamp::now().0)],
    )?;
    db.exec(
        "INSERT INTO app_session (hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        &[
            Val::T(hash),
            Val::I(user_id),
            Val::T(csrf),
            Val::I(Timestamp::now().0),
            Val::I(expires_at.0),
        ],
    )?;
    Ok(())
}

/// The unexpired session with keyed hash `hash`, and its user.
pub(crate) fn session(db: &mut impl Db, hash: &str, now: Timestamp) -> Result<Option<Session>> {
    let Some((user_name, csrf, expires)) = db.one(
        "SELECT u.name, s.csrf, s.expires_at FROM app_session s JOIN app_user u ON u.id = s.user_id \
         WHERE s.hash = $1 AND s.expires_at > $2",
        &[Val::T(hash), Val::I(now.0)],
        |r| Ok((r.text(0)?, r.text(1)?, r.int(2)?)),
    )?
    else {
        return Ok(None);
    };
    Ok(user(db, &user_name)?.map(|(user, _)| Session {
        user,
        csrf,
        expires_at: Timestamp(expires),
    }))
}

/// Ends a session.
pub(crate) fn delete_session(db: &mut impl Db, hash: &str) -> Result<bool> {
    Ok(db.exec("DELETE FROM app_session WHERE hash = $1", &[Val::T(hash)])? == 1)
}

// ----- audit -----

/// Appends to the audit log.
pub(crate) fn audit(db: &mut impl Db, e: &NewAudit) -> Result<()> {
    db.exec(
        "INSERT INTO audit (at, actor, action, target, before, after) VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            Val::I(chrono_ms()),
            Val::T(&e.actor),
            Val::T(&e.action),
            Val::T(&e.target),
            Val::OptT(e.before.as_deref()),
            Val::OptT(e.after.as_deref()),
        ],
    )?;
    Ok(())
}

fn chrono_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Audit entries, newest first, keyset-paged by id.
pub(crate) fn audit_log(db: &mut impl Db, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
    db.all(
        "SELECT id, at, actor, action, target, before, after FROM audit \
         WHERE (CAST($1 AS BIGINT) = 0 OR id < $1) AND ($2 = '' OR actor = $2) AND ($3 = '' OR action LIKE $3 || '%') \
         AND ($4 = '' OR target = $4) ORDER BY id DESC LIMIT $5",
        &[
            Val::I(q.before_id.unwrap_or(0)),
            Val::T(q.actor.as_deref().unwrap_or("")),
            Val::T(q.action.as_deref().unwrap_or("")),
            Val::T(q.target.as_deref().unwrap_or("")),
            Val::I(q.limit.clamp(1, 1000)),
        ],
        |r| {
            Ok(AuditEntry {
                id: r.int(0)?,
                at_ms: r.int(1)?,
                actor: r.text(2)?,
                action: r.text(3)?,
                target: r.text(4)?,
                before: r.opt_text(5)?.and_then(|t| serde_json::from_str(&t).ok()),
                after: r.opt_text(6)?.and_then(|t| serde_json::from_str(&t).ok()),
            })
        },
    )
}

// ----- dashboard -----

/// Indicators ingested per hour and source since `since` (hour starts, oldest first).
pub(crate) fn ingest_hours(db: &mut impl Db, since: Timestamp) -> Result<Vec<IngestHour>> {
    db.all(
        "SELECT h.hour, s.name, h.new, h.updated, h.unchanged FROM ingest_hour h \
         JOIN source s ON s.id = h.source_id WHERE h.hour >= $1 ORDER BY h.hour, s.name",
        &[Val::I(since.0)],
        |r| {
            Ok(IngestHour {
                hour: Timestamp(r.int(0)?),
                source: r.text(1)?,
                new: r.int(2)? as u64,
                updated: r.int(3)? as u64,
                unchanged: r.int(4)? as u64,
            })
        },
    )
}

/// The ids of the most sighted indicators, most hits first.
pub(crate) fn top_sighted(db: &mut impl Db, limit: i64) -> Result<Vec<i64>> {
    db.all(
        "SELECT id FROM indicator ORDER BY hits DESC, id LIMIT $1",
        &[Val::I(limit.clamp(1, 1000))],
        |r| r.int(0),
    )
}
