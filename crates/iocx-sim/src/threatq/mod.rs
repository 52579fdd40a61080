//! # ThreatQ emulator
//!
//! The ThreatQuotient ThreatQ REST API as written down in
//! `contracts/tippingpoint-sms-and-threatq.md` Part B and `contracts/vendors.md` §6: OAuth2
//! tokens, the indicator registries, indicators with their sources, attributes, tags and scores,
//! saved searches ("data collections" of the Threat Library) and the two ways clients page
//! through them. ThreatQ has no official SDK on PyPI (the vendor's `threatqsdk` is only vendored
//! inside integrations such as Netskope's), so there is no SDK check; the routes and shapes
//! follow the requests those integrations make.
//!
//! ## Routes
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | `/api/token` | 200 `{access_token, token_type:"Bearer", expires_in, refresh_token}` |
//! | GET | `/api/objects` | 200 object collections with their `types` and `statuses` |
//! | GET | `/api/indicator/types[?name=]`, `/api/indicator/types/{id}` | the type registry |
//! | GET | `/api/indicator/statuses[?name=]`, `/api/indicator/statuses/{id}` | 1 Active … 5 Whitelisted |
//! | GET | `/api/indicators[?value=&type_id=&status_id=&with=&fields=&limit=&offset=]` | `{total,data,limit,offset}` |
//! | POST | `/api/indicators` | object or array → 201 `{total, data:[…]}` |
//! | POST | `/api/indicators/consume`, `/api/indicators/consume/new` | bulk upsert of an array → 201 |
//! | POST | `/api/indicators/query?limit&offset&sort` | body `{criteria, filters, fields}` → `{total,data,limit,offset}` |
//! | GET | `/api/indicators/query/hash/{hash}?sort&limit&cursorMark&fields` | `{total,data,nextCursorMark,limit}` |
//! | GET, PUT, DELETE | `/api/indicators/{id}` | `{data:{…}}` (score as an object); DELETE 204 |
//! | GET, PUT | `/api/indicator/{id}/scores` | `{"manual_score": 0..10 \| null}` |
//! | GET, POST | `/api/indicators/{id}/{attributes\|sources\|tags}` | list; POST 201 |
//! | PUT | `/api/indicators/{id}/attributes/{pivot}` | `{"value"}` |
//! | DELETE | `/api/indicators/{id}/{attributes\|sources\|tags}/{pivot}` | 204 |
//! | GET, POST | `/api/search/query[?name=]` | saved searches; POST `{name, json}` → 201 |
//! | GET, DELETE | `/api/search/query/{id}` | one saved search by id, hash or exact name |
//! | GET | `/api/search?query=&limit=` | quick search over values |
//! | GET, DELETE | `/_sim/state` | indicators and saved searches; DELETE removes the indicators |
//! | GET, PUT | `/_sim/faults`; GET, DELETE `/_sim/requests` | shared admin routes ([`crate::common`]) |
//!
//! Every `/api/…` route but the token endpoint wants `Authorization: Bearer <access_token>`; a
//! missing, unknown or expired token answers 401 `{"errors":["Access denied"]}`, the signal
//! clients take to refresh. Validation failures answer 400 in the documented field form
//! `{"data":{"errors":{"value":["…"]}}}` (array items are keyed `3.value`); other refusals in the
//! list form `{"errors":["…"]}`; unknown objects 404 `{"errors":["The requested object does not
//! exist."]}`.
//!
//! ## Tokens
//!
//! `POST /api/token` takes `grant_type` and its parameters from the query string, a form body or
//! a JSON body, in any mix:
//! - `client_credentials` with HTTP Basic `--client-id:--client-secret` (or `client_id` and
//!   `client_secret` parameters);
//! - `password` with `email`, `password` and `client_id` (the UI's client id, `--ui-client-id`);
//! - `refresh_token` with `refresh_token`.
//!
//! Access tokens live `--token-lifetime-secs` (3600; set 1 or 2 to exercise refresh), refresh
//! tokens `--refresh-lifetime-secs`. A refresh token is spent by its use.
//!
//! ## Threat Library queries
//!
//! An `api_query` is `{"criteria": {…}, "filters": {…}}`; every key of each object must match.
//! Groups: `+or`, `+and` (lists of objects), `+not` (an object). Fields: `value`, `mentions`
//! (substring of value or description), `type_name`/`type`, `type_id`, `status_name`/`status`,
//! `status_id`, `class`, `score`, `source_name`, `tags`, `attribute` (`{name, value}`), `id`, and
//! the dates `created_at`, `updated_at`, `touched_at`, `published_at`, `expires_at`. Values may be
//! a scalar, a list (any of), or operators `+gt`, `+gte`, `+lt`, `+lte`, `+eq`, `+ne`, `+like`,
//! `+in`. Dates take `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DD`, RFC 3339, `NOW`, `TODAY`, and relative
//! forms (`-7 days`, `7 days ago`, `+1 hour`). An unknown field is a 400 naming it.
//!
//! With `fields` (a list in the query body, or `fields=a,b` on GETs) each indicator carries only
//! those keys, `type` and `status` flattened to their names and `score` a number — what
//! Netskope's plugin reads. Without `fields`, list answers carry the whole object with `type` and
//! `status` as objects; relations (`attributes`, `sources`, `tags`) only when asked for with
//! `with=` or `fields`.
//!
//! Saved searches start with four: "Active Indicators", "High Score Network Indicators",
//! "Vision One Blocklist" (the six types the Vision One action bundle exports, status Active)
//! and "Whitelisted Indicators". Each has an id, a name and a `hash`; the collection endpoint
//! takes any of them.
//!
//! Indicators whose `expires_at` passes turn to status Expired (with `expired_at`) before the
//! next API request is answered.
//!
//! Faults from [`crate::common::Faults`] apply to every API route, rendered as
//! `{"errors":["…"]}`; `capacity_reached` refuses creates and consumes with a 400.
//!
//! ## Choices
//!
//! Where the contracts mark a fact unconfirmed, the emulator chooses and a flag switches:
//!
//! - **Bad login**: 400 `{"errors":["…"]}` (the contract says 400 on bad login; the body is
//!   unknown). `--bad-login-status 401` answers 401 instead.
//! - **401 body**: `{"errors":["Access denied"]}` (the contract's suggestion). Not switchable.
//! - **Refresh tokens**: single use (`--reuse-refresh-tokens` keeps them valid until they expire).
//! - **Type ids**: instance data; here the types are numbered alphabetically from 1.
//!   `--type-id-offset N` shifts them, to catch clients that hard-code ids.
//! - **Default status** of a created indicator without one: `--default-status Review`
//!   (ThreatQ's is configurable per instance).
//! - **Creating an indicator that exists** (same type and canonical value): merged into the
//!   existing one, which keeps its id (`--duplicate-create merge`); `reject` answers 400
//!   "The value has already been taken.".
//! - **Relations in list answers**: left out unless `with=`/`fields` asks, as on current
//!   platforms (Elastic PR #20042); `--relations-by-default` includes attributes, sources and
//!   tags always, as older platforms did.
//! - **`tags` selected by `fields`**: a list of names (`--tags-as-objects` gives `[{id,name}]`).
//! - **Saved search `json`**: sent as a JSON string (`--search-json-as-string`, default on;
//!   the vendor SDK accepts both); set `--search-json-as-string=false` for an object.
//! - **Collection id** of `/api/indicators/query/hash/{…}`: the saved search's `hash`, id or name.
//! - **Terminal collection page**: `"data": []` (`--empty-page-as-object` answers `"data": {}`
//!   as Elastic's mock does). `nextCursorMark` of an empty page repeats the one sent.
//! - **Page sizes**: `limit` defaults to `--default-page-size` 100; larger than
//!   `--max-page-size` (1000) is cut to it (clients page by the returned count).
//! - **Batch size** of one create or consume: at most `--max-batch` (5000) items, else 400.
//! - **Instance size**: at most `--max-indicators` (10,000,000); a create that would pass it is a
//!   400 "The indicator limit of this instance … has been reached.".
//! - **Body size**: `--max-body-bytes` (16 MiB), else 413 `{"errors":[…]}`.

mod data;
mod handlers;
mod model;
pub mod query;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use chrono::Utc;

use crate::common::{self, FaultArgs, Faults, RequestLog, SimHandle, TlsIdentity};

pub use data::{
    DuplicateCreate, FieldErrors, IssuedToken, NewIndicator, SavedSearch, Sort, SortField, State,
    StoreError, default_searches, parse_new_indicator,
};
pub use model::{
    Attribute, Class, Indicator, IndicatorType, Relation, Render, STATUSES, SourceLink, Status,
    TIME_FORMAT, Tag, format_time, indicator_fields, indicator_types, indicator_wire, parse_time,
    status_by_id, status_by_name, value_hash,
};

/// The `iocx sim threatq` flags.
#[derive(clap::Args, Clone)]
pub struct Args {
    /// Client id of the client-credentials grant (HTTP Basic user).
    #[arg(long, value_name = "ID", default_value = "iocx-integration")]
    pub client_id: String,
    /// Client secret of the client-credentials grant (HTTP Basic password).
    #[arg(long, value_name = "SECRET")]
    pub client_secret: String,
    /// E-mail of the user of the password grant.
    #[arg(long, value_name = "EMAIL", default_value = "analyst@example.com")]
    pub email: String,
    /// Password of the user of the password grant.
    #[arg(long, value_name = "PASSWORD", default_value = "")]
    pub password: String,
    /// The UI's OAuth client id, which password grants send as `client_id`.
    #[arg(long, value_name = "ID", default_value = "threatq-ui")]
    pub ui_client_id: String,
    /// Lifetime of access tokens in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub token_lifetime_secs: i64,
    /// Lifetime of refresh tokens in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 14 * 24 * 3600)]
    pub refresh_lifetime_secs: i64,
    /// Keep refresh tokens valid after use.
    #[arg(long)]
    pub reuse_refresh_tokens: bool,
    /// Status of a failed login (400 or 401).
    #[arg(long, value_name = "STATUS", default_value_t = 400)]
    pub bad_login_status: u16,
    /// Pre-fill N realistic indicators of mixed types, statuses, sources and attributes.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub indicators: usize,
    /// Seed of the pre-filled data.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Added to every indicator type id.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub type_id_offset: u64,
    /// Status of created indicators that name none.
    #[arg(long, value_name = "NAME", default_value = "Review")]
    pub default_status: String,
    /// What creating an existing indicator does.
    #[arg(long, value_enum, default_value_t = DuplicateCreate::Merge)]
    pub duplicate_create: DuplicateCreate,
    /// Always include attributes, sources and tags in list answers.
    #[arg(long)]
    pub relations_by_default: bool,
    /// `tags` selected by `fields` as objects rather than names.
    #[arg(long)]
    pub tags_as_objects: bool,
    /// Send saved searches' `json` as a string.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub search_json_as_string: bool,
    /// Answer an empty collection page with `"data": {}`.
    #[arg(long)]
    pub empty_page_as_object: bool,
    /// Page size when a request has no `limit`.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub default_page_size: usize,
    /// Largest page size.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_page_size: usize,
    /// Most indicators in one create or consume request.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub max_batch: usize,
    /// Most indicators held.
    #[arg(long, value_name = "N", default_value_t = 10_000_000)]
    pub max_indicators: usize,
    /// Largest request body in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Serve HTTPS with a self-signed certificate for 127.0.0.1 and localhost.
    #[arg(long)]
    pub tls: bool,
    /// Fault injection.
    #[command(flatten)]
    pub faults: FaultArgs,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Args")
            .field("client_id", &self.client_id)
            .field("client_secret", &"****")
            .field("email", &self.email)
            .field("password", &"****")
            .field("indicators", &self.indicators)
            .finish_non_exhaustive()
    }
}

impl Args {
    /// The flags' defaults with these client credentials (for tests and in-process use).
    pub fn new(client_id: &str, client_secret: &str) -> Args {
        Args {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            email: "analyst@example.com".into(),
            password: String::new(),
            ui_client_id: "threatq-ui".into(),
            token_lifetime_secs: 3600,
            refresh_lifetime_secs: 14 * 24 * 3600,
            reuse_refresh_tokens: false,
            bad_login_status: 400,
            indicators: 0,
            seed: 1,
            type_id_offset: 0,
            default_status: "Review".into(),
            duplicate_create: DuplicateCreate::Merge,
            relations_by_default: false,
            tags_as_objects: false,
            search_json_as_string: true,
            empty_page_as_object: false,
            default_page_size: 100,
            max_page_size: 1000,
            max_batch: 5000,
            max_indicators: 10_000_000,
            max_body_bytes: 16 * 1024 * 1024,
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
    /// Indicators, saved searches and tokens.
    pub state: Arc<State>,
    /// The live fault settings.
    pub faults: Arc<Faults>,
    /// Every request answered.
    pub log: Arc<RequestLog>,
}

/// Renders an error in ThreatQ's list form, `{"errors":["…"]}` (the code is not part of it).
pub fn render_error(status: StatusCode, _code: &str, message: &str) -> Response {
    (status, Json(serde_json::json!({"errors": [message]}))).into_response()
}

/// Builds the router (already wrapped by [`common::admin_routes`]) and the emulator's state,
/// pre-filled as `args` say.
///
/// # Errors
/// When `--default-status` names no status.
pub fn build(args: &Args) -> anyhow::Result<(axum::Router, Emulator)> {
    let default_status = status_by_name(&args.default_status).ok_or_else(|| {
        anyhow::anyhow!(
            "--default-status {:?} is not a ThreatQ status",
            args.default_status
        )
    })?;
    let state = Arc::new(State::new(data::Config {
        types: indicator_types(args.type_id_offset),
        default_status,
        duplicate_create: args.duplicate_create,
        max_indicators: args.max_indicators,
    }));
    state.seed(args.indicators, args.seed, Utc::now());
    let faults = Faults::new(args.faults.clone());
    let log = Arc::new(RequestLog::default());
    let ctx = Arc::new(handlers::Ctx {
        state: state.clone(),
        faults: faults.clone(),
        args: args.clone(),
    });
    let api = axum::Router::new()
        .route("/api/token", post(handlers::token))
        .route("/api/objects", get(handlers::objects))
        .route("/api/indicator/types", get(handlers::types))
        .route("/api/indicator/types/{id}", get(handlers::type_by_id))
        .route("/api/indicator/statuses", get(handlers::statuses))
        .route(
            "/api/indicator/statuses/{id}",
            get(handlers::status_by_id_handler),
        )
        .route(
            "/api/indicator/{id}/scores",
            get(handlers::scores).put(handlers::scores),
        )
        .route(
            "/api/indicators",
            get(handlers::list_indicators).post(handlers::create_indicators),
        )
        .route(
            "/api/indicators/consume",
            post(handlers::consume_indicators),
        )
        .route(
            "/api/indicators/consume/new",
            post(handlers::consume_indicators),
        )
        .route("/api/indicators/query", post(handlers::query_indicators))
        .route(
            "/api/indicators/query/hash/{hash}",
            get(handlers::collection_page),
        )
        .route(
            "/api/indicators/{id}",
            get(handlers::get_indicator)
                .put(handlers::update_indicator)
                .delete(handlers::delete_indicator),
        )
        .route(
            "/api/indicators/{id}/{kind}",
            get(handlers::list_relation).post(handlers::add_relation),
        )
        .route(
            "/api/indicators/{id}/{kind}/{pivot}",
            put(handlers::edit_relation).delete(handlers::delete_relation),
        )
        .route(
            "/api/search/query",
            get(handlers::list_searches).post(handlers::create_search),
        )
        .route(
            "/api/search/query/{id}",
            get(handlers::get_search).delete(handlers::delete_search),
        )
        .route("/api/search", get(handlers::quick_search))
        .route(
            "/_sim/state",
            get(handlers::get_state).delete(handlers::clear_state),
        )
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(ctx);
    let router = common::admin_routes(api, faults.clone(), log.clone(), render_error);
    Ok((router, Emulator { state, faults, log }))
}

/// Builds the emulator and serves it on `listener` (HTTPS with a self-signed certificate when
/// `--tls`).
///
/// # Errors
/// When the flags are inconsistent, the listener has no local address, or the TLS identity
/// cannot be made.
pub async fn start(
    listener: tokio::net::TcpListener,
    args: &Args,
) -> anyhow::Result<(SimHandle, Emulator)> {
    let (router, emulator) = build(args)?;
    let tls = if args.tls {
        Some(TlsIdentity::self_signed()?)
    } else {
        None
    };
    let handle = common::serve(listener, router, tls).await?;
    Ok((handle, emulator))
}
