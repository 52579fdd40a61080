//! Process-wide counters of what runs did, for the service's `/metrics`: monotonic sums by
//! metric name and labels, added to when a run finishes (whoever started it).

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

/// A metric's labels, in order.
pub type Labels = Vec<(&'static str, String)>;

static SERIES: LazyLock<Mutex<BTreeMap<(&'static str, Labels), f64>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));

/// Adds `value` to the series `name{labels}`.
pub fn add(name: &'static str, labels: &[(&'static str, &str)], value: f64) {
    let key = (
        name,
        labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect(),
    );
    if let Ok(mut series) = SERIES.lock() {
        *series.entry(key).or_insert(0.0) += value;
    }
}

/// Every series: name, labels, value.
pub fn snapshot() -> Vec<(&'static str, Labels, f64)> {
    SERIES
        .lock()
        .map(|s| s.iter().map(|((n, l), v)| (*n, l.clone(), *v)).collect())
        .unwrap_or_default()
}
