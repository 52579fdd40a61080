//! Indicators and their storage keys.

use std::fmt;
use std::hash::Hasher;

use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128, SipHasher13};

use crate::Kind;

/// One IoC: a kind and a canonical value.
///
/// Two indicators are the same IoC exactly when kind and value are equal, which is why the
/// value must be canonical (see [`crate::parse`]). Construct through the parser; the fields
/// are public for storage layers that read back values they wrote.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Indicator {
    /// The kind.
    pub kind: Kind,
    /// The canonical value.
    pub value: String,
}

impl Indicator {
    /// An indicator from a kind and an already canonical value.
    pub fn new(kind: Kind, value: impl Into<String>) -> Indicator {
        Indicator {
            kind,
            value: value.into(),
        }
    }

    /// The storage key of this indicator under `secret`.
    pub fn key(&self, secret: &KeySecret) -> IndicatorKey {
        IndicatorKey::of(secret, self.kind, &self.value)
    }
}

impl fmt::Display for Indicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// A per-installation secret that keys [`IndicatorKey`] hashing.
///
/// Keys are 128-bit keyed SipHash values: far too wide to collide by chance (about 10⁻²⁴ at ten
/// million indicators) and, because the key is secret, not forgeable by someone who publishes
/// crafted values in a feed. Each store generates its own secret once and keeps it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeySecret(pub [u8; 16]);

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySecret(…)")
    }
}

/// The fixed-width identity of an indicator in a store: a keyed 128-bit hash of kind and
/// canonical value.
///
/// Stores index this instead of the text value: it is smaller, compares in one step, and keeps
/// index inserts cheap, which is what makes bulk ingest fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndicatorKey(pub [u8; 16]);

impl IndicatorKey {
    /// The key of `(kind, value)`.
    pub fn of(secret: &KeySecret, kind: Kind, value: &str) -> IndicatorKey {
        let (k0, k1) = secret.0.split_at(8);
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(k0);
        b.copy_from_slice(k1);
        let mut hasher = SipHasher13::new_with_keys(u64::from_le_bytes(a), u64::from_le_bytes(b));
        hasher.write_u8(kind.code());
        hasher.write(value.as_bytes());
        IndicatorKey(hasher.finish128().as_bytes())
    }

    /// The key as a `u128`, for in-memory maps.
    pub fn as_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_kind_value_and_secret() {
        let s1 = KeySecret([1; 16]);
        let s2 = KeySecret([2; 16]);
        let a = IndicatorKey::of(&s1, Kind::Domain, "example.com");
        assert_eq!(a, IndicatorKey::of(&s1, Kind::Domain, "example.com"));
        assert_ne!(a, IndicatorKey::of(&s1, Kind::Url, "example.com"));
        assert_ne!(a, IndicatorKey::of(&s1, Kind::Domain, "example.org"));
        assert_ne!(a, IndicatorKey::of(&s2, Kind::Domain, "example.com"));
    }
}
