//! # ServiceNow emulator
//!
//! A ServiceNow instance's Table API, OAuth token endpoint and Batch API, as written down in
//! `contracts/vendors.md` §5 and `contracts/netskope-cte-anchor.md` §5.5, with the tables iocx
//! and Netskope's plugins use: the Threat Intelligence observables (`sn_ti_observable`, whose
//! `type` references `sn_ti_observable_type`), security incidents (`sn_si_incident`),
//! `incident`, and `sys_user`. The community Python client `pysnow` (checked with 0.7.17) works
//! against it unchanged; `tests/sdk_servicenow.rs` proves it.
//!
//! ## Routes
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/api/now/table/{table}` | 200 `{"result":[…]}`, `X-Total-Count`, `Link` |
//! | POST | `/api/now/table/{table}` | 201 `{"result":{…}}`, `Location` |
//! | GET | `/api/now/table/{table}/{sys_id}` | 200 `{"result":{…}}` |
//! | PUT, PATCH | `/api/now/table/{table}/{sys_id}` | 200 `{"result":{…}}` |
//! | DELETE | `/api/now/table/{table}/{sys_id}` | 204, no body |
//! | POST | `/api/now/v1/batch` (and `/api/now/batch`) | 200 Batch API answer |
//! | POST | `/oauth_token.do` | 200 `{"access_token",…}` (form body) |
//! | GET, DELETE | `/_sim/state` | every table's raw records; DELETE empties the data tables |
//! | GET, PUT | `/_sim/faults`; GET, DELETE `/_sim/requests` | shared admin routes |
//!
//! The Table API also answers under `/api/now/v1/table/…` and `/api/now/v2/table/…`.
//!
//! **Auth**: HTTP Basic with `--user`/`--password`, or `Authorization: Bearer` with a token from
//! `/oauth_token.do` (`grant_type=password` with `--client-id`/`--client-secret` and the user's
//! password; `refresh_token`; `client_credentials`, acting as `--user`). Missing credentials get
//! 401 "User Not Authenticated", wrong ones 401 "User is not authenticated", both with detail
//! "Required to provide Auth information" and `WWW-Authenticate: BASIC realm="Service-now"`.
//! `--read-only-user USER:PASSWORD` may read but gets 403 "Operation Failed" / "ACL Exception
//! Insert Failed due to security constraints" on writes.
//!
//! **Envelopes**: `{"result": …}` on success; every error is
//! `{"error":{"message":…,"detail":…},"status":"failure"}`: 400 "Invalid table NAME", 404 "No
//! Record found" / "Record doesn't exist or ACL restricts the record retrieval", 400
//! "Exception while reading request" for bodies that are not a JSON object, 405 "Method not
//! Supported", 413 past `--max-body-bytes`, 429 "Rate limit exceeded". Injected faults use the
//! same envelope.
//!
//! **Records**: every value is a string; `sys_id` is 32 hex digits; `sys_created_on` and
//! `sys_updated_on` are `YYYY-MM-DD HH:MM:SS` in UTC; `sys_created_by`/`sys_updated_by` hold the
//! user name; `sys_mod_count` counts updates. Task tables number their records (`INC0010001`,
//! `SIR0010001`) and set `opened_at`/`opened_by`. Reference fields render as
//! `{"link": ".../api/now/table/T/ID", "value": ID}` (just the ID with
//! `sysparm_exclude_reference_link=true`); `sysparm_display_value=true` gives display values
//! (references by the target's display column, choices by label), `all` gives
//! `{"display_value","value"}` for every field. `sysparm_fields` selects columns, dot-walked
//! names (`type.value`) come back as literal keys.
//!
//! **Queries** (`sysparm_query`): `^` AND, `^OR` (binds tighter than AND), `^NQ`, `ORDERBY` /
//! `ORDERBYDESC`, and the operators `=`, `!=`, `>`, `>=`, `<`, `<=`, `LIKE`, `NOT LIKE`,
//! `STARTSWITH`, `ENDSWITH`, `IN`, `NOT IN`, `ISEMPTY`, `ISNOTEMPTY`, `EMPTYSTRING`, `ANYTHING`,
//! `BETWEEN` (`a@b`), `SAMEAS`, `NSAMEAS`, on plain or dot-walked fields. Dates compare as dates
//! and accept `javascript:gs.dateGenerate('2024-01-01','00:00:00')`, `gs.daysAgo(n)`,
//! `gs.beginningOfToday()` and friends; numbers compare as numbers; text case-insensitively.
//! Paging: `sysparm_limit` and `sysparm_offset`; `X-Total-Count` always; `Link` with
//! `rel="first"`, `"prev"`, `"next"`, `"last"` unless the answer is a single page or
//! `sysparm_suppress_pagination_header=true`.
//!
//! **Batch API**: `{"batch_request_id","rest_requests":[{"id","method","url","headers",
//! "body"(base64),"exclude_response_headers"}]}` → `{"batch_request_id","serviced_requests":
//! [{"id","status_code","status_text","headers","body"(base64),"execution_time"}],
//! "unserviced_requests":[ids]}`. Each sub-request runs through the same Table API as the
//! authenticated user, so a connector can check and create thousands of observables in one round
//! trip instead of two requests per IoC.
//!
//! ## Pointing pysnow at it
//!
//! `pysnow.Client(host="127.0.0.1:PORT", use_ssl=False, user=USER, password=PASSWORD)`: `host`
//! replaces the `INSTANCE.service-now.com` default and `use_ssl=False` makes the base
//! `http://127.0.0.1:PORT`. For OAuth, `pysnow.OAuthClient(client_id=…, client_secret=…,
//! host=…, use_ssl=False)` and `set_token(generate_token(user, password))`; oauthlib refuses a
//! plain-http token URL unless `OAUTHLIB_INSECURE_TRANSPORT=1` is set (its switch for local
//! testing), or serve `--tls` and trust the certificate through `REQUESTS_CA_BUNDLE`. With
//! `--tls`, pass pysnow a `requests.Session` with `auth` set and `verify=False` (or the
//! certificate) instead of `user`/`password`. Beware that a pysnow resource keeps the last
//! `fields=` it was given and sends them with later requests, writes included; the emulator,
//! like ServiceNow, honours `sysparm_fields` on a write's answer, so a create then lacks
//! `sys_id` unless it was among them.
//!
//! ## Choices
//!
//! Where the contract is silent, the emulator chooses, and a flag switches where it matters:
//!
//! - **Invalid queries**: conditions on fields the table does not have, and terms that cannot
//!   be read, are dropped, so the rest of the query still filters (ServiceNow's default,
//!   `--invalid-query ignore`); `no-rows` answers an empty result (ServiceNow's
//!   `glide.invalid_query.returns_no_rows`), `error` a 400 "Invalid query".
//! - **Page size**: `sysparm_limit` defaults to 10,000 (`--default-limit`) and is capped at
//!   10,000 (`--max-limit`). A non-numeric `sysparm_limit` or `sysparm_offset` is a 400.
//! - **Order without `ORDERBY`**: by `sys_id`, as the database returns it (new records land
//!   anywhere: clients that page while others write should order by `sys_created_on`).
//! - **Text comparisons** are case-insensitive (ServiceNow's default collation). A reference
//!   compares by `sys_id`; dot-walk (`type.value=MD5`) to compare by a column of the target.
//! - **Writes**: unknown columns and system columns are ignored (a valid unused `sys_id` is kept
//!   on insert; a used one is 403 "Operation Failed"). Numbers and booleans become strings,
//!   reference objects `{"value": …}` their value. A reference given as text that is not a
//!   `sys_id` is looked up by the target's display column, then `value`, then `user_name`;
//!   unresolvable text is stored as given (a broken reference with an empty display value).
//!   Unparseable date-times and integers are stored empty.
//! - **Observable types** (`sn_ti_observable_type`, `name`/`value`): MD5, SHA1, SHA256, URL,
//!   `ipv4-addr`, `ipv6-addr`, `Domain name`, FQDN, `email-addr` (Netskope's plugins query
//!   `type.value` with these values). `finding` is a choice of Malicious, Suspicious, Unknown,
//!   Clean.
//! - **Batch API**: the first `--batch-max-requests` (1,000) sub-requests are served; the rest
//!   are listed in `unserviced_requests`. Sub-requests may only address the Table API. The
//!   Import Set API is not emulated.
//! - **OAuth**: access tokens live `--token-ttl-secs` (1,800 s) and answer `expires_in`; refresh
//!   tokens 100 days. A bad client or password is 401 `{"error":"server_error",
//!   "error_description":"access_denied"}`. Without `--client-id`/`--client-secret` every grant
//!   is refused.
//! - **Rate limit**: off by default; `--rate-limit N` per user per
//!   `--rate-limit-window-secs` (3,600) answers 429 with `Retry-After`, `X-RateLimit-Limit` and
//!   `X-RateLimit-Reset`.
//! - **`DELETE /_sim/state`** empties observables and incidents; users and observable types
//!   stay.
//! - **Faults**: every shared fault applies except `capacity_reached`, which has no ServiceNow
//!   counterpart (the Table API has no capacity limit) and is ignored.

mod data;
mod handlers;
mod model;
mod query;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use chrono::Utc;
use serde_json::{Value, json};

use crate::common::{self, FaultArgs, Faults, RequestLog, SimHandle, TlsIdentity};

pub use data::{Db, OBSERVABLE_TYPES, State, WriteError};
pub use model::{
    DATA_TABLES, Display, Field, Kind, Lookup, Record, RenderOptions, Resolved, SYSTEM_FIELDS,
    TABLES, TIME_FORMAT, Table, format_time, parse_time, render, resolve, table,
};
pub use query::{Cond, Op, Query, QueryError, parse as parse_query, parse_date_value};

/// The default user.
pub const DEFAULT_USER: &str = "iocx.integration";
/// The default password.
pub const DEFAULT_PASSWORD: &str = "iocx-sim-password";

/// A password. Its `Debug` form hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The password.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(****)")
    }
}

impl FromStr for Password {
    type Err = String;

    fn from_str(s: &str) -> Result<Password, String> {
        if s.is_empty() {
            Err("must not be empty".to_string())
        } else {
            Ok(Password(s.to_string()))
        }
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Password {
        Password(s.to_string())
    }
}

/// A user that may read but not write, given as `USER:PASSWORD`. Its `Debug` form hides the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct ReadOnlyUser {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl fmt::Debug for ReadOnlyUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReadOnlyUser({}:****)", self.user)
    }
}

impl FromStr for ReadOnlyUser {
    type Err = String;

    fn from_str(s: &str) -> Result<ReadOnlyUser, String> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() && !p.is_empty() => Ok(ReadOnlyUser {
                user: u.to_string(),
                password: p.to_string(),
            }),
            _ => Err("expected USER:PASSWORD".to_string()),
        }
    }
}

/// What a query on unknown fields (or with unreadable terms) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InvalidQuery {
    /// Drop those conditions (ServiceNow's default).
    Ignore,
    /// Answer no rows.
    NoRows,
    /// Answer 400 "Invalid query".
    Error,
}

/// The `iocx sim servicenow` flags.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// The user of HTTP Basic auth and the OAuth password grant.
    #[arg(long, value_name = "USER", default_value = DEFAULT_USER)]
    pub user: String,
    /// That user's password.
    #[arg(long, value_name = "PASSWORD", default_value = DEFAULT_PASSWORD)]
    pub password: Password,
    /// A user that may read but gets 403 on writes, as `USER:PASSWORD`.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub read_only_user: Option<ReadOnlyUser>,
    /// The OAuth client ID (`/oauth_token.do` refuses every grant without one).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// The OAuth client secret.
    #[arg(long, value_name = "SECRET")]
    pub client_secret: Option<Password>,
    /// Lifetime of OAuth access tokens.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub token_ttl_secs: u64,
    /// Pre-fill N threat-intelligence observables.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub records: usize,
    /// Pre-fill N security incidents and N incidents.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub incidents: usize,
    /// Seed of the pre-filled data.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// `sysparm_limit` when a list request has none.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub default_limit: usize,
    /// The most records one page holds.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_limit: usize,
    /// What a query on unknown fields does.
    #[arg(long, value_enum, default_value_t = InvalidQuery::Ignore)]
    pub invalid_query: InvalidQuery,
    /// The most sub-requests one Batch API request has served.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub batch_max_requests: usize,
    /// Allow N requests per user per window, then answer 429.
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u64>,
    /// The rate limit's sliding window.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub rate_limit_window_secs: u64,
    /// Largest request body in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Serve HTTPS with a self-signed certificate for 127.0.0.1 and localhost.
    #[arg(long)]
    pub tls: bool,
    /// Fault injection.
    #[command(flatten)]
    pub faults: FaultArgs,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            user: DEFAULT_USER.to_string(),
            password: Password::from(DEFAULT_PASSWORD),
            read_only_user: None,
            client_id: None,
            client_secret: None,
            token_ttl_secs: 1800,
            records: 0,
            incidents: 0,
            seed: 1,
            default_limit: 10_000,
            max_limit: 10_000,
            invalid_query: InvalidQuery::Ignore,
            batch_max_requests: 1000,
            rate_limit: None,
            rate_limit_window_secs: 3600,
            max_body_bytes: 10 * 1024 * 1024,
            tls: false,
            faults: FaultArgs {
                retry_after_secs: 1,
                server_error_status: 500,
                ..FaultArgs::default()
            },
        }
    }
}

/// A built emulator: what it holds, its fault switches and its request log.
#[derive(Debug, Clone)]
pub struct Emulator {
    /// The tables.
    pub state: Arc<State>,
    /// The live fault settings.
    pub faults: Arc<Faults>,
    /// Every request answered.
    pub log: Arc<RequestLog>,
}

/// ServiceNow's error body: `{"error":{"message","detail"},"status":"failure"}`.
pub fn error_body(message: &str, detail: Option<&str>) -> Value {
    json!({
        "error": {"message": message, "detail": detail},
        "status": "failure",
    })
}

/// Renders an error in ServiceNow's envelope (the fault layer's code becomes the detail).
pub fn render_error(status: StatusCode, code: &str, message: &str) -> Response {
    let message = match status {
        StatusCode::TOO_MANY_REQUESTS => "Rate limit exceeded",
        _ => message,
    };
    (status, axum::Json(error_body(message, Some(code)))).into_response()
}

/// Builds the router (already wrapped by [`common::admin_routes`]) and the emulator's state,
/// pre-filled as `args` say.
pub fn build(args: &Args) -> (axum::Router, Emulator) {
    let now = Utc::now();
    let state = Arc::new(State::new(args.seed, &args.user, now));
    state.seed(args.records, args.incidents, now);
    let faults = Faults::new(args.faults.clone());
    let log = Arc::new(RequestLog::default());
    let ctx = Arc::new(handlers::Ctx::new(state.clone(), args.clone()));
    let api = axum::Router::new()
        .route("/api/now/{*rest}", any(handlers::api))
        .route("/oauth_token.do", post(handlers::oauth_token))
        .route(
            "/_sim/state",
            get(handlers::get_state).delete(handlers::clear_state),
        )
        .fallback(handlers::not_found)
        .with_state(ctx);
    let router = common::admin_routes(api, faults.clone(), log.clone(), render_error);
    (router, Emulator { state, faults, log })
}

/// Builds the emulator and serves it on `listener` (HTTPS with a self-signed certificate when
/// `--tls`).
///
/// # Errors
/// When the listener has no local address or the TLS identity cannot be made.
pub async fn start(
    listener: tokio::net::TcpListener,
    args: &Args,
) -> anyhow::Result<(SimHandle, Emulator)> {
    let (router, emulator) = build(args);
    let tls = if args.tls {
        Some(TlsIdentity::self_signed()?)
    } else {
        None
    };
    let handle = common::serve(listener, router, tls).await?;
    Ok((handle, emulator))
}
