//! # iocx-sim
//!
//! Emulators of the vendor APIs iocx talks to, each a real HTTP server bound to loopback. Tests
//! start them in-process on `127.0.0.1:0`; `iocx sim NAME --listen ADDR` runs one in the
//! foreground; `iocx serve --demo` starts them beside the exchange.
//!
//! Every emulator follows its vendor's public API as written down in the project's contracts:
//! paths, headers, authentication, JSON keys, pagination, per-item results, error envelopes, batch
//! and capacity limits, and rate limits, close enough that the vendor's own SDK works against it.
//! Where a contract marks a fact as unconfirmed, the emulator module documents the choice and makes
//! it switchable.
//!
//! Shared machinery lives in [`common`]:
//! - [`common::Faults`]: switchable faults (429 with `Retry-After` every Nth request, 5xx, slow
//!   answers, dropped connections, an outage window, capacity reached), set by flags or at run
//!   time through `GET`/`PUT /_sim/faults`, a path no vendor API uses;
//! - [`common::RequestLog`]: every request seen, readable at `GET /_sim/requests`, so tests can
//!   count deliveries;
//! - [`common::serve`]: runs a router on an already-bound listener, over HTTP or over TLS with a
//!   self-signed certificate, and returns a [`common::SimHandle`] that stops it.
//!
//! One module per product, each with an `Args` (its `iocx sim` flags), a `State` (what it holds),
//! and a `router` function.

#![forbid(unsafe_code)]

pub mod carbon_black;
pub mod common;
pub mod crowdstrike;
pub mod misp;
pub mod netskope;
pub mod sentinelone;
pub mod servicenow;
pub mod threatq;
pub mod tippingpoint_sms;
pub mod trend_vision_one;
