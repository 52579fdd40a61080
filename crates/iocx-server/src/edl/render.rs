//! Rendering one EDL list: filter by kind, order by priority, cap, format.

use std::hash::Hasher;

use bytes::Bytes;
use iocx_model::Kind;
use siphasher::sip128::{Hasher128, SipHasher13};

/// The definition of one EDL list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdlList {
    /// The list name, served at `/edl/NAME.txt`.
    pub name: String,
    /// The kinds the list carries; empty means every kind.
    pub kinds: Vec<Kind>,
    /// The most entries the list holds (the firewall's limit); 0 means no limit.
    pub capacity: usize,
    /// Strip `http://` and `https://` from URLs (PAN-OS URL lists reject schemes).
    pub strip_url_scheme: bool,
}

/// One candidate entry of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdlEntry {
    /// The indicator kind.
    pub kind: Kind,
    /// The canonical indicator value.
    pub value: String,
    /// Higher priorities are kept first when the list is over capacity.
    pub priority: i64,
}

/// A rendered list.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// One entry per line, each line ending in `\n`.
    pub body: Bytes,
    /// The strong entity tag of `body`, quoted.
    pub etag: String,
    /// Lines in `body`.
    pub count: usize,
    /// Entries dropped because the list was over capacity.
    pub dropped: usize,
}

/// Renders `entries` as `list` defines.
pub fn render(list: &EdlList, mut entries: Vec<EdlEntry>) -> Rendered {
    entries.retain(|e| list.kinds.is_empty() || list.kinds.contains(&e.kind));
    entries.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| a.value.cmp(&b.value))
    });
    let mut seen = std::collections::HashSet::new();
    let mut body = String::new();
    let mut count = 0usize;
    let mut dropped = 0usize;
    for entry in &entries {
        let line = format_value(list, entry);
        if line.is_empty() || line.contains(['\n', '\r']) || !seen.insert(line) {
            continue;
        }
        if list.capacity != 0 && count == list.capacity {
            dropped += 1;
            continue;
        }
        body.push_str(line);
        body.push('\n');
        count += 1;
    }
    let mut hasher = SipHasher13::new();
    hasher.write(body.as_bytes());
    let etag = format!("\"{:032x}\"", hasher.finish128().as_u128());
    Rendered {
        body: Bytes::from(body),
        etag,
        count,
        dropped,
    }
}

fn format_value<'a>(list: &EdlList, entry: &'a EdlEntry) -> &'a str {
    let value = entry.value.as_str();
    if list.strip_url_scheme && entry.kind == Kind::Url {
        for scheme in ["https://", "http://"] {
            if let (Some(head), Some(rest)) = (value.get(..scheme.len()), value.get(scheme.len()..))
                && head.eq_ignore_ascii_case(scheme)
            {
                return rest;
            }
        }
    }
    value
}
