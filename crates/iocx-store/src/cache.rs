//! In-memory caches shared by a store's connections: interned tag sets and sources.
//!
//! Both change rarely and are read on every batch; a write transaction records what it adds
//! and the cache only learns it after the commit, so a rolled-back transaction cannot leave
//! an id behind that the database never got.

use std::sync::RwLock;

use hashbrown::HashMap;
use iocx_model::TagSet;

use crate::types::Source;

/// Interned tag sets, both ways.
#[derive(Default)]
pub(crate) struct TagCache {
    inner: RwLock<TagMaps>,
}

#[derive(Default)]
struct TagMaps {
    by_text: HashMap<String, i64>,
    by_id: HashMap<i64, TagSet>,
}

impl TagCache {
    pub fn id_of(&self, joined: &str) -> Option<i64> {
        if joined.is_empty() {
            return Some(0);
        }
        self.inner.read().ok()?.by_text.get(joined).copied()
    }

    pub fn set_of(&self, id: i64) -> Option<TagSet> {
        if id == 0 {
            return Some(TagSet::new());
        }
        self.inner.read().ok()?.by_id.get(&id).cloned()
    }

    pub fn learn(&self, id: i64, joined: String) {
        if let Ok(mut maps) = self.inner.write() {
            maps.by_id.insert(id, TagSet::from_joined(&joined));
            maps.by_text.insert(joined, id);
        }
    }
}

/// Sources by id.
#[derive(Default)]
pub(crate) struct SourceCache {
    inner: RwLock<HashMap<i64, Source>>,
}

impl SourceCache {
    pub fn get(&self, id: i64) -> Option<Source> {
        self.inner.read().ok()?.get(&id).cloned()
    }

    pub fn replace(&self, sources: Vec<Source>) {
        if let Ok(mut map) = self.inner.write() {
            map.clear();
            for s in sources {
                map.insert(s.id, s);
            }
        }
    }

    /// id → (name, aging days), the form aggregation needs.
    pub fn naming(&self) -> HashMap<i64, (String, i64)> {
        self.inner
            .read()
            .map(|m| {
                m.values()
                    .map(|s| (s.id, (s.name.clone(), s.aging_days)))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn name(&self, id: i64) -> String {
        self.get(id)
            .map(|s| s.name)
            .unwrap_or_else(|| format!("#{id}"))
    }
}
