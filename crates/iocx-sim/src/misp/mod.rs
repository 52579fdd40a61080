//! # MISP emulator
//!
//! The MISP REST API as written down in `contracts/vendors.md` §7: API-key authentication,
//! PyMISP's start-up calls, events with their attributes and tags, the two `restSearch`
//! endpoints with MISP's filter language and `page`/`limit` paging, tagging, and the static feed
//! format (`manifest.json`, `<uuid>.json`, `hashes.csv`). PyMISP, MISP's official Python SDK,
//! works against it unchanged (`tests/sdk_misp.rs`).
//!
//! ## Routes
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/servers/getVersion`, `/servers/getPyMISPVersion.json` | the versions PyMISP checks |
//! | GET | `/users/view/me` | `{User, Role, UserSetting, Organisation}` |
//! | GET | `/attributes/describeTypes.json` | `{"result": {sane_defaults, types, categories, category_type_mappings}}` |
//! | POST | `/events/add`, `/events/add/metadata:1` | the stored event `{"Event": …}` |
//! | GET, POST, HEAD | `/events/view/{id or uuid}` | `{"Event": …}`; POST `{"deleted": 1}` shows deleted attributes |
//! | POST, PUT | `/events/edit/{id or uuid}` | the changed event |
//! | POST, DELETE | `/events/delete/{id or uuid}` | `{"saved": true, …}` |
//! | POST | `/events/publish/{id}`, `/events/unpublish/{id}` | `{"saved": true, …}` |
//! | GET, POST | `/events/index[/limit:N/page:N]` | event heads with `EventTag`, newest first |
//! | POST | `/events/restSearch` | `{"response": [{"Event": …}]}` with `X-Result-Count` |
//! | POST | `/attributes/restSearch` | `{"response": {"Attribute": […]}}` with `X-Result-Count` |
//! | POST | `/attributes/add/{event}` | one attribute or a list, with per-item `errors` |
//! | GET, HEAD | `/attributes/view/{id or uuid}` | `{"Attribute": …}` |
//! | POST, PUT | `/attributes/edit/{id or uuid}` | `{"Attribute": …}` |
//! | POST, DELETE | `/attributes/delete/{id}[/1]` | soft delete, or hard with `/1` or `{"hard": 1}` |
//! | POST | `/attributes/deleteSelected/{event}` | `{"id": [ids] \| "all", "allow_hard_delete"}` |
//! | GET | `/tags/index`, `/tags/view/{id}`, `/tags/search/{name}` | tags |
//! | POST | `/tags/add`, `/tags/search`, `/tags/attachTagToObject`, `/tags/removeTagFromObject` | tags |
//! | GET | `/feed/manifest.json`, `/feed/{uuid}.json`, `/feed/hashes.csv` | the published events as a static feed |
//! | GET, DELETE | `/_sim/state` | events and tags; DELETE removes the events |
//! | GET, PUT | `/_sim/faults`; GET, DELETE `/_sim/requests` | shared admin routes ([`crate::common`]) |
//!
//! Every route but the feed wants the API key in `Authorization` (or `X-MISP-AUTH`); a missing
//! or wrong key answers 403 `{"name": "Authentication failed…", "message": …, "url": …}`, MISP's
//! envelope for every refusal. Validation failures add `"saved": false` and `"errors"`.
//!
//! ## restSearch
//!
//! Filters: `value`, `type`, `category`, `tags`, `event_tags`, `org`, `eventid`, `uuid`,
//! `eventinfo`, `threat_level_id` (a scalar, a list where `!x` negates, or `{"OR", "AND",
//! "NOT"}`; `%` is a wildcard), `to_ids`, `published`, `deleted` (MISP's loose booleans),
//! `timestamp`/`attribute_timestamp`, `event_timestamp`, `publish_timestamp`/`last` (epoch
//! seconds, a date, or a span like `5d`; a list is `[from, to]`), `from`/`to` (the event date),
//! `page`, `limit`, `includeEventTags`, `includeEventUuid`, `includeDecayScore`, `metadata`
//! and `returnFormat` (`json` only). Without `limit` everything comes back; pages are 1-based.
//!
//! ## Choices
//!
//! Where the contract leaves a behaviour open, the emulator chooses and a flag switches:
//!
//! - **Invalid attributes in an event add**: dropped, the event saved without them
//!   (`--invalid-attribute drop`, MISP's behaviour); `reject` refuses the whole event.
//!   `--report-dropped-attributes` lists them under `Event.dropped_attributes`.
//! - **Validation status**: 403 (`--validation-status`), as MISP answers a failed save.
//! - **`tags` on attributes restSearch**: matches the attribute's and its event's tags
//!   (`--tags-include-event`, default on), as MISP does; off matches attribute tags only.
//! - **Attribute order**: by id (`--attribute-order id`); `timestamp` sorts by last change.
//! - **Page size**: `limit` above `--max-limit` (10,000) is cut to it, or refused with a 400
//!   with `--refuse-large-limit`.
//! - **Accept header**: not required; `--require-accept-json` answers 406 without
//!   `Accept: application/json`.
//! - **Static feed**: served under `/feed/` without a key (`--serve-feed`, default on).
//! - **Body size**: `--max-body-bytes` (16 MiB), else 413.

mod data;
mod handlers;
mod model;
pub mod search;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;

use crate::common::{self, FaultArgs, Faults, RequestLog, SimHandle, TlsIdentity};

pub use data::{AttributeOrder, Fail, InvalidAttribute, State, new_uuid};
pub use model::{
    Attribute, AttributeType, CATEGORIES, Event, Org, Rule, TYPES, Tag, attribute_type,
    describe_types, feed_event, manifest_entry,
};

/// The `iocx sim misp` flags.
#[derive(clap::Args, Clone)]
pub struct Args {
    /// The API key clients send in `Authorization` (or `X-MISP-AUTH`).
    #[arg(long, value_name = "KEY")]
    pub key: String,
    /// The MISP version `/servers/getVersion` reports.
    #[arg(long, value_name = "VERSION", default_value = "2.5.17")]
    pub misp_version: String,
    /// The PyMISP version the instance recommends.
    #[arg(long, value_name = "VERSION", default_value = "2.5.17")]
    pub pymisp_recommended_version: String,
    /// Name of the instance's organisation.
    #[arg(long, value_name = "NAME", default_value = "ORGNAME")]
    pub org_name: String,
    /// E-mail of the key's user.
    #[arg(long, value_name = "EMAIL", default_value = "admin@admin.test")]
    pub user_email: String,
    /// Pre-fill N realistic events with their attributes and tags.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub events: usize,
    /// Seed of the pre-filled data.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// What an event add does with an invalid attribute.
    #[arg(long, value_enum, default_value_t = InvalidAttribute::Drop)]
    pub invalid_attribute: InvalidAttribute,
    /// List the attributes an event add dropped under `Event.dropped_attributes`.
    #[arg(long)]
    pub report_dropped_attributes: bool,
    /// Status of a failed validation.
    #[arg(long, value_name = "STATUS", default_value_t = 403)]
    pub validation_status: u16,
    /// Distribution of events that name none (0 your organisation … 3 all communities).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub default_distribution: u8,
    /// Threat level of events that name none (1 high … 4 undefined).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub default_threat_level: u8,
    /// `tags` on attribute searches also matches the event's tags.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub tags_include_event: bool,
    /// The order of attribute search results.
    #[arg(long, value_enum, default_value_t = AttributeOrder::Id)]
    pub attribute_order: AttributeOrder,
    /// Largest page (`limit`) of a search.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_limit: usize,
    /// Refuse a larger `limit` with a 400 instead of cutting it.
    #[arg(long)]
    pub refuse_large_limit: bool,
    /// Answer 406 to requests without `Accept: application/json`.
    #[arg(long)]
    pub require_accept_json: bool,
    /// Serve the published events as a static feed under `/feed/`.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub serve_feed: bool,
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
            .field("key", &"****")
            .field("misp_version", &self.misp_version)
            .field("org_name", &self.org_name)
            .field("events", &self.events)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Args {
    /// The flags' defaults with this API key (for tests and in-process use).
    pub fn new(key: &str) -> Args {
        Args {
            key: key.to_string(),
            misp_version: "2.5.17".into(),
            pymisp_recommended_version: "2.5.17".into(),
            org_name: "ORGNAME".into(),
            user_email: "admin@admin.test".into(),
            events: 0,
            seed: 1,
            invalid_attribute: InvalidAttribute::Drop,
            report_dropped_attributes: false,
            validation_status: 403,
            default_distribution: 1,
            default_threat_level: 4,
            tags_include_event: true,
            attribute_order: AttributeOrder::Id,
            max_limit: 10_000,
            refuse_large_limit: false,
            require_accept_json: false,
            serve_feed: true,
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
    /// Events, attributes and tags.
    pub state: Arc<State>,
    /// The live fault settings.
    pub faults: Arc<Faults>,
    /// Every request answered.
    pub log: Arc<RequestLog>,
}

/// Renders an error in MISP's envelope, `{"name", "message", "url"}` (injected faults do not
/// know the URL, so it is empty).
pub fn render_error(status: StatusCode, _code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"name": message, "message": message, "url": ""})),
    )
        .into_response()
}

/// Builds the router (already wrapped by [`common::admin_routes`]) and the emulator's state,
/// pre-filled as `args` say.
///
/// # Errors
/// When the API key is empty, or a default threat level or distribution is out of range.
pub fn build(args: &Args) -> anyhow::Result<(axum::Router, Emulator)> {
    if args.key.trim().is_empty() {
        anyhow::bail!("--key must not be empty: MISP clients always send an API key");
    }
    if !(1..=4).contains(&args.default_threat_level) {
        anyhow::bail!(
            "--default-threat-level {} is not a MISP threat level (1 high, 2 medium, 3 low, 4 undefined)",
            args.default_threat_level
        );
    }
    if args.default_distribution > 4 {
        anyhow::bail!(
            "--default-distribution {} is not a MISP distribution (0 to 4)",
            args.default_distribution
        );
    }
    let state = Arc::new(State::new(data::Config {
        invalid_attribute: args.invalid_attribute,
        validation_status: args.validation_status,
        default_distribution: args.default_distribution,
        default_threat_level: args.default_threat_level,
        tags_include_event: args.tags_include_event,
        attribute_order: args.attribute_order,
        max_limit: args.max_limit,
        org_name: args.org_name.clone(),
        user_email: args.user_email.clone(),
    }));
    state.seed(args.events, args.seed, Utc::now());
    let faults = Faults::new(args.faults.clone());
    let log = Arc::new(RequestLog::default());
    let ctx = Arc::new(handlers::Ctx {
        state: state.clone(),
        faults: faults.clone(),
        args: args.clone(),
    });
    let api = axum::Router::new()
        .route("/servers/getVersion", get(handlers::get_version))
        .route("/servers/getVersion.json", get(handlers::get_version))
        .route(
            "/servers/getPyMISPVersion.json",
            get(handlers::get_pymisp_version),
        )
        .route("/users/view/me", get(handlers::user_me))
        .route("/users/view/me.json", get(handlers::user_me))
        .route("/attributes/describeTypes.json", get(handlers::describe))
        .route("/events/add", post(handlers::add_event))
        .route("/events/add/{option}", post(handlers::add_event))
        .route(
            "/events/view/{id}",
            get(handlers::view_event).post(handlers::view_event),
        )
        .route(
            "/events/edit/{id}",
            post(handlers::edit_event).put(handlers::edit_event),
        )
        .route(
            "/events/delete/{id}",
            post(handlers::delete_event).delete(handlers::delete_event),
        )
        .route("/events/{verb}/{id}", post(handlers::publish))
        .route(
            "/events/index",
            get(handlers::events_index).post(handlers::events_index),
        )
        .route(
            "/events/index/{*named}",
            get(handlers::events_index).post(handlers::events_index),
        )
        .route("/events/restSearch", post(handlers::events_search))
        .route("/attributes/restSearch", post(handlers::attributes_search))
        .route("/attributes/add/{event}", post(handlers::add_attribute))
        .route("/attributes/view/{id}", get(handlers::view_attribute))
        .route(
            "/attributes/edit/{id}",
            post(handlers::edit_attribute).put(handlers::edit_attribute),
        )
        .route(
            "/attributes/delete/{id}",
            post(handlers::delete_attribute).delete(handlers::delete_attribute),
        )
        .route(
            "/attributes/delete/{id}/{hard}",
            post(handlers::delete_attribute).delete(handlers::delete_attribute),
        )
        .route(
            "/attributes/deleteSelected/{event}",
            post(handlers::delete_selected),
        )
        .route("/tags/index", get(handlers::tags_index))
        .route("/tags/view/{id}", get(handlers::tag_view))
        .route("/tags/add", post(handlers::tag_add))
        .route("/tags/search", post(handlers::tag_search_post))
        .route("/tags/search/{name}", get(handlers::tag_search_get))
        .route("/tags/{verb}", post(handlers::tag_object))
        .route("/feed/{file}", get(handlers::feed))
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
