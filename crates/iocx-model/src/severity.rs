//! Severity and reputation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How bad an indicator is, as a source rates it.
///
/// Ordered: `Unknown < Low < Medium < High < Critical`, so "highest severity" is `max`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The source gave no severity.
    #[default]
    Unknown,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Unknown,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The stable numeric code stored in databases (0 = unknown … 4 = critical).
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The severity for a numeric code.
    pub const fn from_code(code: u8) -> Option<Severity> {
        Some(match code {
            0 => Severity::Unknown,
            1 => Severity::Low,
            2 => Severity::Medium,
            3 => Severity::High,
            4 => Severity::Critical,
            _ => return None,
        })
    }

    /// The lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`Severity`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}; expected unknown, low, medium, high or critical")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    /// Parses a severity name or the names vendors use (`info`, `minor`, `major`, `severe`,
    /// `moderate`, …), case-insensitively, or a code `0`–`4`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "" | "unknown" | "none" | "n/a" | "na" | "unspecified" | "0" => Severity::Unknown,
            "low" | "info" | "informational" | "minor" | "1" => Severity::Low,
            "medium" | "moderate" | "med" | "warning" | "2" => Severity::Medium,
            "high" | "major" | "severe" | "3" => Severity::High,
            "critical" | "crit" | "4" => Severity::Critical,
            other => return Err(UnknownSeverity(other.to_string())),
        })
    }
}

/// A reputation score from 1 (bad, malicious) to 10 (good), as Netskope CTE uses it.
///
/// Sources that give none are assigned [`Reputation::DEFAULT`] unless their configuration
/// overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Reputation(u8);

impl Reputation {
    /// The reputation given when a source gives none (5, as in CTE).
    pub const DEFAULT: Reputation = Reputation(5);

    /// A reputation, if `value` is in `1..=10`.
    pub const fn new(value: u8) -> Option<Reputation> {
        if value >= 1 && value <= 10 {
            Some(Reputation(value))
        } else {
            None
        }
    }

    /// The score.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Reputation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A reputation outside `1..=10`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reputation {0:?} is out of range; expected a whole number from 1 to 10")]
pub struct BadReputation(pub String);

impl TryFrom<u8> for Reputation {
    type Error = BadReputation;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Reputation::new(value).ok_or_else(|| BadReputation(value.to_string()))
    }
}

impl From<Reputation> for u8 {
    fn from(value: Reputation) -> u8 {
        value.0
    }
}

impl FromStr for Reputation {
    type Err = BadReputation;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<u8>()
            .ok()
            .and_then(Reputation::new)
            .ok_or_else(|| BadReputation(s.trim().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Unknown);
        assert_eq!("MAJOR".parse::<Severity>(), Ok(Severity::High));
        assert_eq!("4".parse::<Severity>(), Ok(Severity::Critical));
        assert!("urgent!".parse::<Severity>().is_err());
        for s in Severity::ALL {
            assert_eq!(Severity::from_code(s.code()), Some(s));
        }
    }

    #[test]
    fn reputation_bounds() {
        assert!(Reputation::new(0).is_none());
        assert!(Reputation::new(11).is_none());
        assert_eq!("7".parse::<Reputation>().map(Reputation::get), Ok(7));
        assert!("seven".parse::<Reputation>().is_err());
    }
}
