//! An in-memory copy of the key index, for re-imports of large feeds.
//!
//! Resolving a key through SQLite is an index probe (about a microsecond); a feed re-sent on
//! every poll probes every one of its keys each time. The cache holds every `(key, id)` of the
//! store: a sorted array loaded from the key index in one sequential scan (20 bytes an entry, no
//! hashing overhead), plus a small map of keys inserted since. A batch's keys arrive sorted, so
//! lookups walk the array forward.
//!
//! The cache is loaded only when a batch finds most of its keys already stored, and only while
//! the store is within [`KeyCache::MAX_ENTRIES`], so memory stays bounded whatever the store's
//! size. It learns inserted keys only after their transaction commits. Another process writing
//! the same database can add keys the cache does not know: such an insert then conflicts, and the
//! importer looks the key up for certain (see `WriteTx::insert_indicators`).

use hashbrown::HashMap;
use iocx_model::IndicatorKey;
use rusqlite::Connection;

use crate::error::Result;

#[derive(Clone, Copy)]
struct Entry {
    key: [u8; 16],
    id: u32,
}

/// The key index in memory.
#[derive(Default)]
pub(crate) struct KeyCache {
    sorted: Vec<Entry>,
    recent: HashMap<[u8; 16], i64>,
    loaded: bool,
}

impl KeyCache {
    /// The most entries the cache holds (about 400 MiB); larger stores resolve through SQLite.
    pub const MAX_ENTRIES: usize = 20_000_000;
    /// Recent keys are merged into the sorted array past this many.
    const MERGE_AT: usize = 1 << 20;

    /// Whether the cache holds every key of the store.
    pub fn loaded(&self) -> bool {
        self.loaded
    }

    /// Loads every key of the store; returns false (and stays unloaded) when the store is
    /// beyond [`KeyCache::MAX_ENTRIES`] or has ids beyond 32 bits.
    pub fn load(&mut self, conn: &Connection) -> Result<bool> {
        let (count, max_id): (i64, i64) = conn.query_row(
            "SELECT count(*), coalesce(max(id), 0) FROM indicator",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if count as usize > Self::MAX_ENTRIES || max_id > i64::from(u32::MAX) {
            return Ok(false);
        }
        let mut sorted = Vec::with_capacity(count as usize + Self::MERGE_AT / 4);
        let mut stmt =
            conn.prepare("SELECT key, id FROM indicator INDEXED BY indicator_key ORDER BY key")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let key = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
            let Ok(key) = <[u8; 16]>::try_from(key) else {
                continue;
            };
            let id: i64 = row.get(1)?;
            sorted.push(Entry { key, id: id as u32 });
        }
        self.sorted = sorted;
        self.recent.clear();
        self.loaded = true;
        Ok(true)
    }

    /// Looks up sorted keys; `None` where the cache does not hold the key.
    pub fn lookup(&self, keys: &[IndicatorKey]) -> Vec<Option<i64>> {
        let mut out = Vec::with_capacity(keys.len());
        let mut from = 0;
        for key in keys {
            let rest = &self.sorted[from..];
            let at = rest.partition_point(|e| e.key < key.0);
            from += at;
            match self.sorted.get(from) {
                Some(e) if e.key == key.0 => out.push(Some(i64::from(e.id))),
                _ => out.push(self.recent.get(&key.0).copied()),
            }
        }
        out
    }

    /// Records keys inserted by a committed transaction.
    pub fn learn(&mut self, inserted: &[(IndicatorKey, i64)]) {
        if !self.loaded {
            return;
        }
        for (key, id) in inserted {
            if *id > i64::from(u32::MAX)
                || self.sorted.len() + self.recent.len() >= Self::MAX_ENTRIES
            {
                // Beyond what the cache may hold: stop using it rather than answer wrongly.
                self.forget();
                return;
            }
            self.recent.insert(key.0, *id);
        }
        if self.recent.len() >= Self::MERGE_AT {
            let mut add: Vec<Entry> = self
                .recent
                .drain()
                .map(|(key, id)| Entry { key, id: id as u32 })
                .collect();
            add.sort_unstable_by_key(|e| e.key);
            let old = std::mem::take(&mut self.sorted);
            let mut merged = Vec::with_capacity(old.len() + add.len());
            let (mut a, mut b) = (old.into_iter().peekable(), add.into_iter().peekable());
            loop {
                let take_a = match (a.peek(), b.peek()) {
                    (Some(x), Some(y)) => x.key <= y.key,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (None, None) => break,
                };
                if let Some(e) = if take_a { a.next() } else { b.next() } {
                    merged.push(e);
                }
            }
            self.sorted = merged;
        }
    }

    /// Drops everything (after a rollback, or when the store outgrows the cache).
    pub fn forget(&mut self) {
        self.sorted = Vec::new();
        self.recent = HashMap::new();
        self.loaded = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> IndicatorKey {
        IndicatorKey([n; 16])
    }

    #[test]
    fn lookups_walk_sorted_and_recent_keys() {
        let mut c = KeyCache {
            sorted: vec![
                Entry {
                    key: [2; 16],
                    id: 20,
                },
                Entry {
                    key: [4; 16],
                    id: 40,
                },
            ],
            recent: HashMap::new(),
            loaded: true,
        };
        c.learn(&[(key(3), 30)]);
        assert_eq!(
            c.lookup(&[key(1), key(2), key(3), key(4), key(5)]),
            vec![None, Some(20), Some(30), Some(40), None]
        );
    }
}
