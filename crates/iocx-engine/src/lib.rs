//! # iocx-engine
//!
//! Where configurations come to life: the [`vault`] seals their secrets, [`configs`] validates
//! and opens them, [`pull`] runs one pull as a sequence of committed, checkpointed batches, and
//! [`scheduler`] runs every configuration at its interval.
//!
//! Design decisions:
//! - **Jobs are leased from the database**, not held in memory: a node runs a job only while it
//!   holds and renews its lease, so several nodes on one PostgreSQL never run a job twice, and
//!   a job of a node that died is taken over when its lease expires. The run then continues
//!   from the last committed checkpoint.
//! - **Every batch commits with its checkpoint**: a crash loses at most the batch in flight,
//!   which the next run pulls again.
//! - **Runs are records**: state, counts and log lines are in the store, for `iocx runs`, the
//!   API and the console.

#![forbid(unsafe_code)]

pub mod admin;
pub mod configs;
pub mod counters;
pub mod explain;
pub mod lease;
pub mod pull;
pub mod rules;
pub mod runlog;
pub mod scheduler;
pub mod share;
pub mod vault;

use std::time::Duration;

use iocx_connectors::{ConnectorError, FieldErrors};
use iocx_store::{Store, StoreError};

pub use vault::{Vault, VaultError};

/// The engine of one process.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The store.
    pub store: Store,
    /// Seals and opens secrets.
    pub vault: Vault,
    /// This process's name in leases and runs (`iocx@HOST:PID`).
    pub owner: String,
    /// Tuning.
    pub options: EngineOptions,
}

/// Engine tuning.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How long a lease lasts without renewal.
    pub lease_ttl_secs: i64,
    /// How often the scheduler looks for due jobs.
    pub tick: Duration,
    /// The most jobs this node runs at once.
    pub max_concurrent: usize,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        // IOCX_LEASE_TTL_SECS shortens takeover in tests and tunes it for slow shared stores.
        let lease_ttl_secs = std::env::var("IOCX_LEASE_TTL_SECS")
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|&v| (1..=86_400).contains(&v))
            .unwrap_or(60);
        EngineOptions {
            lease_ttl_secs,
            tick: Duration::from_secs(1),
            max_concurrent: 4,
        }
    }
}

impl Engine {
    /// An engine over `store` with `vault`, named after this process.
    pub fn new(store: Store, vault: Vault) -> Engine {
        Engine {
            store,
            vault,
            owner: owner_name(),
            options: EngineOptions::default(),
        }
    }
}

pub use lease::{owner_alive, owner_name};

/// What went wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Values that do not fit.
    #[error("{0}")]
    Invalid(FieldErrors),
    /// Something named does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The job runs elsewhere.
    #[error("{0}")]
    Busy(String),
    /// The configuration is disabled.
    #[error("{0}")]
    Disabled(String),
    /// The run was stopped.
    #[error("{0}")]
    Cancelled(String),
    /// The connector failed.
    #[error("{0}")]
    Connector(#[from] ConnectorError),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A destination refused or failed a delivery as a whole.
    #[error("delivery failed: {0}")]
    Delivery(String),
    /// A rule does not parse or compile.
    #[error("{0}")]
    Rule(String),
    /// Secrets could not be sealed or opened.
    #[error("{0}")]
    Vault(#[from] VaultError),
}
