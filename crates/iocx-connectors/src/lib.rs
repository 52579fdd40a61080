//! # iocx-connectors
//!
//! How iocx talks to the outside world. A [`Connector`] is a plugin type (`trend_vision_one`,
//! `http_feed`, …): its [`ConnectorSpec`] declares configuration fields, capabilities and push
//! targets with their delivery traits; `validate` tests a configuration against the live API;
//! `pull` streams batches of records with checkpoints; `push` and `retract` return one
//! [`ItemOutcome`] per item; `deploy` runs a target's apply step.
//!
//! Design decisions:
//! - **A static registry** ([`registry`]): each connector is a unit struct listed once, like
//!   ripgrep's flags. A new connector is one module and one line.
//! - **Connectors are stateless**: configuration values, settings, the HTTP client and the run
//!   log arrive in a [`Context`], so the engine can run any connector for any configuration, on
//!   any node.
//! - **One HTTP client** ([`http::HttpClient`]) owns timeouts, retries with backoff and jitter,
//!   `Retry-After`, proxies, TLS and secret redaction; a connector only says what is retriable
//!   for its protocol ([`http::RetryPolicy`]).
//! - **Per-item results, never one bool**: a value a destination refuses fails alone.
//! - **Loop prevention is the platform's**: connectors stamp [`Context::marker`] on what they
//!   push and set `Record::echo` on what comes back with it.
//!
//! The rules every connector follows are written down in `docs/connector-spec.md`.

#![forbid(unsafe_code)]

pub mod carbon_black;
pub mod cef;
mod connector;
pub mod crowdstrike;
pub mod discard;
pub mod external;
pub mod http;
pub mod http_feed;
pub mod misp;
pub mod netskope;
pub mod sentinelone;
pub mod servicenow;
pub mod spec;
pub mod stix_file;
#[doc(hidden)]
pub mod testing;
pub mod threatq;
pub mod tippingpoint_sms;
pub mod trend_vision_one;
mod values;
pub mod webhook;

pub use connector::{
    Connector, ConnectorError, Context, ErrorKind, ItemOutcome, LogLevel, LogSink, MARKER_PREFIX,
    Pages, PullBatch, PushItem, Settings, TargetCall, TracingLog, base_url, http_url, is_echo,
    pull_pages, stored_checkpoint,
};
pub use spec::{
    Capabilities, Capacity, Choice, ConnectorSpec, Delivery, DeliveryMode, FieldKind, FieldSpec,
    TargetSpec,
};
pub use values::{FieldError, FieldErrors, Values};

/// Every built-in connector.
pub fn registry() -> &'static [&'static dyn Connector] {
    &[
        &http_feed::HttpFeed,
        &stix_file::StixFile,
        &webhook::Webhook,
        &external::External,
        &discard::Discard,
        &trend_vision_one::TrendVisionOne,
        &netskope::Netskope,
        &crowdstrike::CrowdStrike,
        &sentinelone::SentinelOne,
        &carbon_black::CarbonBlack,
        &servicenow::ServiceNow,
        &threatq::ThreatQ,
        &misp::Misp,
        &tippingpoint_sms::TippingPointSms,
    ]
}

/// The connector called `name`.
pub fn connector(name: &str) -> Option<&'static dyn Connector> {
    registry().iter().copied().find(|c| c.spec().name == name)
}
