//! Encoding of the values kept in the `meta` table and of run rows, shared by both backends.

use iocx_model::{KeySecret, Reconciliation, Timestamp};
use rand::RngCore;

use crate::error::{Result, StoreError};
use crate::types::{Run, RunState};

pub(crate) fn fresh_secret_hex() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub(crate) fn decode_secret(text: &str) -> Result<KeySecret> {
    let bytes = hex::decode(text.trim()).map_err(|e| StoreError::Corrupt {
        table: "meta",
        detail: format!("key_secret is not hex: {e}"),
    })?;
    let array: [u8; 16] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        table: "meta",
        detail: "key_secret is not 16 bytes".into(),
    })?;
    Ok(KeySecret(array))
}

pub(crate) fn encode_policy(policy: &Reconciliation) -> Result<String> {
    serde_json::to_string(policy)
        .map_err(|e| StoreError::Task(format!("encoding the reconciliation policy: {e}")))
}

pub(crate) fn decode_policy(text: Option<&str>) -> Result<Reconciliation> {
    match text {
        None => Ok(Reconciliation::default()),
        Some(t) => serde_json::from_str(t).map_err(|e| StoreError::Corrupt {
            table: "meta",
            detail: format!("reconciliation policy: {e}"),
        }),
    }
}

/// The columns of a run row, in `SELECT` order.
pub(crate) type RunParts = (
    i64,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    Option<i64>,
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
);

pub(crate) fn run_from_parts(p: RunParts) -> Result<Run> {
    let state = RunState::from_name(&p.4).ok_or_else(|| StoreError::Corrupt {
        table: "run",
        detail: format!("unknown state {:?}", p.4),
    })?;
    let counts = serde_json::from_str(&p.11).unwrap_or(serde_json::Value::Null);
    Ok(Run {
        id: p.0,
        job: p.1,
        subject: p.2,
        identity: p.3,
        state,
        observed_at: Timestamp(p.5),
        started_at: Timestamp(p.6),
        ended_at: p.7.map(Timestamp),
        heartbeat_at: Timestamp(p.8),
        owner: p.9,
        checkpoint: p.10,
        counts,
        error: p.12,
    })
}
