//! Shared test helpers: contexts for connector tests, and "compliance" checks every connector
//! is held to (the rules of `docs/connector-spec.md` that a machine can check), in the manner
//! of Vector's component compliance asserts.
//!
//! - [`check_spec`] checks a spec: names, unique field keys, secrets declared as secrets,
//!   defaults valid against their own fields, choices, bounds, capabilities consistent with
//!   targets, and sane delivery traits.
//! - [`drain`] runs a pull to its end (or a limit) and checks every batch: a checkpoint on each,
//!   no empty batch before the last, a complete snapshot only at the end, nothing after an
//!   error.
//! - [`check_outcomes`] checks that a push or retraction answered one result per item.
//! - [`context`] builds a [`Context`] from field values as a user would set them, with fast
//!   retries and a [`MemoryLog`] to assert log lines on.
//!
//! Not part of the stable API: it exists for the tests of this crate and of the crates above.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::http::{HttpClient, RetryConfig};
use crate::spec::{ConnectorSpec, FieldKind, FieldSpec};
use crate::{
    Connector, ConnectorError, Context, ItemOutcome, LogLevel, LogSink, PullBatch, Settings,
    TargetCall, Values,
};

/// A log sink that keeps every line, for assertions.
#[derive(Debug, Default)]
pub struct MemoryLog {
    lines: Mutex<Vec<(LogLevel, String)>>,
}

impl MemoryLog {
    /// Every line so far.
    pub fn lines(&self) -> Vec<(LogLevel, String)> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every line so far, as text (`warn: message`).
    pub fn text(&self) -> String {
        self.lines()
            .iter()
            .map(|(level, m)| format!("{}: {m}\n", level.as_str()))
            .collect()
    }

    /// Whether some line contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.lines().iter().any(|(_, m)| m.contains(needle))
    }
}

impl LogSink for MemoryLog {
    fn log(&self, level: LogLevel, message: &str) {
        if let Ok(mut l) = self.lines.lock() {
            l.push((level, message.to_string()));
        }
    }
}

/// Retries for tests: three attempts, short waits.
pub fn fast_retry() -> RetryConfig {
    RetryConfig {
        attempts: 3,
        base: Duration::from_millis(20),
        max_wait: Duration::from_secs(2),
    }
}

/// Settings for tests: a 5-second request timeout.
pub fn settings() -> Settings {
    Settings {
        timeout: Duration::from_secs(5),
        ..Settings::default()
    }
}

/// A context for `spec` with `values` (a JSON object of field values, secrets included),
/// validated as the engine validates them; returns the log to assert on.
///
/// # Panics
/// When the values do not validate against the spec.
pub fn context(spec: &ConnectorSpec, values: Value) -> (Context, Arc<MemoryLog>) {
    context_with(spec, values, settings())
}

/// [`context`] with settings of your own.
///
/// # Panics
/// When the values do not validate against the spec.
pub fn context_with(
    spec: &ConnectorSpec,
    values: Value,
    settings: Settings,
) -> (Context, Arc<MemoryLog>) {
    let input: BTreeMap<String, Value> = match values {
        Value::Object(map) => map.into_iter().collect(),
        Value::Null => BTreeMap::new(),
        other => panic!("field values must be a JSON object, not {other}"),
    };
    let values = match Values::validate(&spec.fields, &input) {
        Ok(v) => v,
        Err(e) => panic!("the values do not fit {}: {e}", spec.name),
    };
    let cancel = CancellationToken::new();
    let http = match HttpClient::new(&settings, values.secret_values(), cancel.clone()) {
        Ok(h) => h.with_retry(fast_retry()),
        Err(e) => panic!("HTTP client: {e}"),
    };
    let log = Arc::new(MemoryLog::default());
    let ctx = Context {
        configuration: "test".into(),
        values,
        settings,
        http,
        log: log.clone(),
        last_success: None,
        cancel,
    };
    (ctx, log)
}

/// Whether a key names something that must be a secret.
fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    if k.ends_with("_url") || k.ends_with("_name") || k.ends_with("_file") {
        return false;
    }
    [
        "password",
        "secret",
        "token",
        "api_key",
        "apikey",
        "private_key",
        "header_value",
        "credential",
    ]
    .iter()
    .any(|w| k.contains(w))
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

fn check_fields(owner: &str, fields: &[FieldSpec], problems: &mut Vec<String>) {
    let mut keys = HashSet::new();
    for f in fields {
        let at = format!("{owner}: field {:?}", f.key);
        if !is_name(&f.key) {
            problems.push(format!("{at}: keys are [a-z0-9_]+"));
        }
        if !keys.insert(f.key.as_str()) {
            problems.push(format!("{at}: the key appears twice"));
        }
        if f.label.trim().is_empty() || f.help.trim().is_empty() {
            problems.push(format!("{at}: needs a label and help text"));
        }
        if looks_secret(&f.key) && !f.is_secret() {
            problems.push(format!("{at}: holds a secret, so its kind must be Secret"));
        }
        if f.is_secret() && f.default.is_some() {
            problems.push(format!("{at}: a secret has no default"));
        }
        match &f.kind {
            FieldKind::Choice { choices } | FieldKind::MultiChoice { choices } => {
                let mut seen = HashSet::new();
                if choices.is_empty() {
                    problems.push(format!("{at}: a choice needs choices"));
                }
                for c in choices {
                    if !seen.insert(c.value.as_str()) {
                        problems.push(format!("{at}: choice {:?} appears twice", c.value));
                    }
                }
            }
            FieldKind::Number {
                min: Some(min),
                max: Some(max),
                ..
            } if min > max => problems.push(format!("{at}: min is above max")),
            _ => {}
        }
        if let Some(default) = &f.default {
            let input = BTreeMap::from([(f.key.clone(), default.clone())]);
            if let Err(e) = Values::validate(std::slice::from_ref(f), &input) {
                problems.push(format!("{at}: the default {default} is not valid: {e}"));
            }
        }
    }
}

/// Everything wrong with a spec, as sentences; empty when it complies.
pub fn check_spec(spec: &ConnectorSpec) -> Vec<String> {
    let mut problems = Vec::new();
    let name = spec.name.as_str();
    if !is_name(name) {
        problems.push(format!("{name:?}: connector names are [a-z0-9_]+"));
    }
    if spec.title.trim().is_empty() || spec.description.trim().is_empty() {
        problems.push(format!("{name}: needs a title and a description"));
    }
    check_fields(name, &spec.fields, &mut problems);
    let caps = spec.capabilities;
    if !(caps.pull || caps.push || caps.sightings) {
        problems.push(format!(
            "{name}: can do nothing (no pull, push or sightings)"
        ));
    }
    if !spec.targets.is_empty() && !caps.push {
        problems.push(format!("{name}: has targets but cannot push"));
    }
    if caps.retract && !caps.push {
        problems.push(format!("{name}: retracts but cannot push"));
    }
    let mut names = HashSet::new();
    for t in &spec.targets {
        let at = format!("{name}: target {:?}", t.name);
        if !is_name(&t.name) {
            problems.push(format!("{at}: target names are [a-z0-9_]+"));
        }
        if !names.insert(t.name.as_str()) {
            problems.push(format!("{at}: the name appears twice"));
        }
        if t.label.trim().is_empty() || t.description.trim().is_empty() {
            problems.push(format!("{at}: needs a label and a description"));
        }
        check_fields(&at, &t.fields, &mut problems);
        let d = &t.delivery;
        if d.batch_size == 0 {
            problems.push(format!("{at}: batch_size must be at least 1"));
        }
        if d.byte_budget == Some(0) {
            problems.push(format!("{at}: a byte budget of 0 admits nothing"));
        }
        if d.kinds.is_empty() {
            problems.push(format!("{at}: takes no kind"));
        }
        let kinds: HashSet<_> = d.kinds.iter().collect();
        if kinds.len() != d.kinds.len() {
            problems.push(format!("{at}: a kind appears twice"));
        }
        if d.removal && !caps.retract {
            problems.push(format!(
                "{at}: supports removal but the connector cannot retract"
            ));
        }
        let c = d.capacity;
        if c.per_kind == Some(0) || c.total == Some(0) || c.total_bytes == Some(0) {
            problems.push(format!("{at}: a capacity of 0 admits nothing"));
        }
    }
    if caps.retract && !spec.targets.is_empty() && !spec.targets.iter().any(|t| t.delivery.removal)
    {
        problems.push(format!("{name}: retracts, but no target supports removal"));
    }
    problems
}

/// Panics listing every problem [`check_spec`] finds.
///
/// # Panics
/// When the spec does not comply.
pub fn assert_spec(spec: &ConnectorSpec) {
    let problems = check_spec(spec);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// What a drained pull gave.
#[derive(Debug, Default)]
pub struct Drained {
    /// The batches, in order.
    pub batches: Vec<PullBatch>,
    /// The error that ended the stream, if one did.
    pub error: Option<ConnectorError>,
    /// Whether the stream ran to its end (not stopped at the batch limit).
    pub finished: bool,
}

impl Drained {
    /// All records' values, in order.
    pub fn values(&self) -> Vec<String> {
        self.batches
            .iter()
            .flat_map(|b| b.records.iter().map(|r| r.indicator.value.clone()))
            .collect()
    }

    /// The number of records.
    pub fn records(&self) -> usize {
        self.batches.iter().map(|b| b.records.len()).sum()
    }

    /// Rejections by reason, over all batches.
    pub fn rejected(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for b in &self.batches {
            for (reason, n) in &b.rejected {
                *out.entry(reason.clone()).or_default() += n;
            }
        }
        out
    }

    /// The checkpoint of the last batch, as the engine would store it.
    pub fn checkpoint(&self) -> Option<Value> {
        self.batches.last().map(|b| b.checkpoint.clone())
    }

    /// The error's message (empty when there was none).
    pub fn error_message(&self) -> String {
        self.error
            .as_ref()
            .map(|e| e.message.clone())
            .unwrap_or_default()
    }
}

/// Runs a pull, keeping at most `limit` batches (then dropping the stream, as a killed run
/// would), and checks the batch rules.
///
/// # Panics
/// When a batch breaks a rule: no checkpoint, empty before the last, a complete snapshot
/// before the end, or anything after an error.
pub async fn drain(
    connector: &dyn Connector,
    ctx: &Context,
    checkpoint: Option<Value>,
    limit: Option<usize>,
) -> Drained {
    let name = connector.spec().name.clone();
    let mut out = Drained::default();
    let mut stream = connector.pull(ctx, checkpoint);
    loop {
        if limit.is_some_and(|l| out.batches.len() >= l) {
            return out;
        }
        match stream.next().await {
            None => break,
            Some(Ok(batch)) => {
                assert!(
                    !batch.checkpoint.is_null(),
                    "{name}: batch {} has no checkpoint",
                    out.batches.len() + 1
                );
                out.batches.push(batch);
            }
            Some(Err(e)) => {
                out.error = Some(e);
                assert!(
                    stream.next().await.is_none(),
                    "{name}: the stream went on after an error"
                );
                break;
            }
        }
    }
    out.finished = out.error.is_none();
    let n = out.batches.len();
    for (i, b) in out.batches.iter().enumerate() {
        let last = i + 1 == n && out.finished;
        if !last {
            assert!(
                !b.records.is_empty() || !b.rejected.is_empty(),
                "{name}: batch {} of {n} is empty, but only a last batch may be",
                i + 1
            );
            assert!(
                !b.snapshot_complete,
                "{name}: batch {} of {n} completes a snapshot before the end",
                i + 1
            );
        }
    }
    out
}

/// A call of `spec`'s target `target` with `params` (a JSON object), validated as the engine
/// validates a sharing's parameters.
///
/// # Panics
/// When the target does not exist or the parameters do not fit it.
pub fn target_call(spec: &ConnectorSpec, target: &str, params: Value) -> TargetCall {
    let Some(t) = spec.target(target) else {
        panic!("{} has no target {target}", spec.name)
    };
    let input: BTreeMap<String, Value> = match params {
        Value::Object(m) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    };
    let params = match Values::validate(&t.fields, &input) {
        Ok(v) => v,
        Err(e) => panic!("the parameters do not fit {target}: {e}"),
    };
    TargetCall {
        target: target.into(),
        params,
        sharing: "test-sharing".into(),
        batch: None,
    }
}

/// An item to push: `kind` `value`, high severity, seen now, reported by `feed`.
pub fn push_item(kind: iocx_model::Kind, value: &str) -> crate::PushItem {
    let now = iocx_model::Timestamp::now();
    crate::PushItem {
        indicator: iocx_model::Indicator::new(kind, value),
        severity: iocx_model::Severity::High,
        reputation: 2,
        tags: Vec::new(),
        comment: None,
        expires: None,
        first_seen: now,
        last_seen: now,
        hits: 1,
        sources: vec!["feed".into()],
        safe: false,
    }
}

/// Checks that a push or retraction answered one result per item.
///
/// # Panics
/// When the counts differ.
pub fn check_outcomes(items: usize, outcomes: &[ItemOutcome]) {
    assert_eq!(
        outcomes.len(),
        items,
        "one result per item: {items} items, {} results",
        outcomes.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Capabilities, Delivery, DeliveryMode, TargetSpec};

    #[test]
    fn every_registered_connector_complies() {
        for c in crate::registry() {
            assert_spec(c.spec());
        }
        let names: HashSet<_> = crate::registry()
            .iter()
            .map(|c| c.spec().name.clone())
            .collect();
        assert_eq!(
            names.len(),
            crate::registry().len(),
            "connector names are unique"
        );
    }

    #[test]
    fn the_spec_check_finds_what_is_wrong() {
        let spec = ConnectorSpec {
            name: "Bad Name".into(),
            title: "t".into(),
            description: "d".into(),
            fields: vec![
                FieldSpec::new("api_key", "Key", FieldKind::text(), "h"),
                FieldSpec::new("n", "N", FieldKind::integer(1, 5), "h").default_value(9),
                FieldSpec::new("n", "N", FieldKind::Boolean, "h"),
            ],
            capabilities: Capabilities {
                pull: false,
                push: false,
                retract: false,
                sightings: false,
            },
            targets: vec![TargetSpec {
                name: "t".into(),
                label: "T".into(),
                description: "d".into(),
                fields: Vec::new(),
                delivery: Delivery {
                    mode: DeliveryMode::Incremental,
                    batch_size: 0,
                    byte_budget: None,
                    kinds: Vec::new(),
                    capacity: Default::default(),
                    removal: true,
                    deploy: false,
                },
            }],
        };
        let problems = check_spec(&spec).join("\n");
        for expected in [
            "connector names",
            "must be Secret",
            "default 9 is not valid",
            "appears twice",
            "can do nothing",
            "has targets but cannot push",
            "batch_size",
            "takes no kind",
            "supports removal",
        ] {
            assert!(problems.contains(expected), "{expected}: {problems}");
        }
    }
}
