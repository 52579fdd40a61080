//! Where a feed pull stands, and whether a stored position still applies to what is served now.

use serde::{Deserialize, Serialize};

/// The checkpoint of a feed pull: the validators of the content being read, and how far it was
/// read.
///
/// Invariant: `position` is `Some` only in the checkpoint of a batch that ends part-way through
/// the content; the last batch of a complete read carries `None`, so the next pull asks with
/// `If-None-Match`/`If-Modified-Since` instead of resuming.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The `ETag` of the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Its `Last-Modified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// For a local file, its size and modification time (`SIZE:NANOSECONDS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The last line or element committed; `None` once the content was read to its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
}

impl Checkpoint {
    /// The checkpoint stored by an earlier pull; anything unreadable (another connector's
    /// checkpoint after a configuration was changed, a hand-edited value) means "start over".
    pub fn from_stored(stored: Option<serde_json::Value>) -> Checkpoint {
        stored
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    }

    /// This checkpoint as JSON.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Whether this content is provably the content `other` describes: at least one validator
    /// is known and every validator matches. Without validators nothing can be proven, so a
    /// pull starts over rather than skip lines of a feed that may have changed.
    pub fn same_content(&self, other: &Checkpoint) -> bool {
        let any = self.etag.is_some() || self.last_modified.is_some() || self.identity.is_some();
        any && self.etag == other.etag
            && self.last_modified == other.last_modified
            && self.identity == other.identity
    }

    /// Whether the server (or file system) says the content is the one a finished pull already
    /// read: the same strong `ETag`, or the same file identity. `Last-Modified` alone is not
    /// enough, as it has a resolution of one second.
    pub fn unchanged_since(&self, finished: &Checkpoint) -> bool {
        if finished.position.is_some() {
            return false;
        }
        let etag = matches!((&self.etag, &finished.etag), (Some(a), Some(b)) if a == b && !a.starts_with("W/"));
        let file = matches!((&self.identity, &finished.identity), (Some(a), Some(b)) if a == b);
        etag || file
    }

    /// The position to skip through when reading `self` after an interrupted pull that stored
    /// `previous`: its position if the content is unchanged, else 0.
    pub fn resume_after(&self, previous: &Checkpoint) -> u64 {
        match previous.position {
            Some(p) if self.same_content(previous) => p,
            _ => 0,
        }
    }
}
