//! # iocx-model
//!
//! The vocabulary of iocx as plain data, with no I/O: what an indicator is, how raw text becomes
//! one, what a source says about it, and how the statements of several sources merge.
//!
//! - [`Kind`], [`Indicator`] and [`IndicatorKey`]: one IoC is a kind plus a canonical value; stores
//!   identify it by a keyed 128-bit hash of the two.
//! - [`parse`](parse::parse): refang, detect or check the kind, canonicalise. Two spellings of one
//!   IoC always give the same [`Indicator`], and parsing a canonical value gives it back unchanged.
//! - [`Record`] (one line of a feed), [`Attributes`] (what a source says) and [`Observation`]
//!   (what a source has said, accumulated): a source's newest statement replaces its previous one,
//!   while first/last seen and hits accumulate.
//! - [`aggregate()`]: the indicator-level view over every source under an installation-wide
//!   [`Reconciliation`] policy.
//!
//! Design decisions:
//! - Times are whole seconds ([`Timestamp`]): feeds rarely carry more, and an `i64` stores and
//!   indexes compactly in both databases.
//! - Activity is derived, not stored as a flag: an indicator is active while it is neither expired
//!   (`expires`) nor aged out (`aged_at`, the latest `last_seen + aging days` over its sources), so
//!   the passing of time needs no writes.

#![forbid(unsafe_code)]

mod aggregate;
pub mod feed;
mod indicator;
mod kind;
mod observation;
pub mod parse;
pub mod rule;
mod severity;
mod time;

pub use aggregate::{Aggregate, Overrides, Reconciliation, SourcedObservation, aggregate};
pub use indicator::{Indicator, IndicatorKey, KeySecret};
pub use kind::{Kind, UnknownKind};
pub use observation::{Attributes, MAX_TAG_LEN, MAX_TAGS, Observation, Record, TagSet};
#[doc(hidden)]
pub use parse::check_invariants;
pub use parse::{ParseError, ParseOptions, Parsed, Problem, UrlSchemePolicy, parse};
pub use severity::{BadReputation, Reputation, Severity, UnknownSeverity};
pub use time::{BadTimestamp, DAY, Timestamp, parse_duration};
