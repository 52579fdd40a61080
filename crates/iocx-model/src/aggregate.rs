//! The indicator's aggregate over all its sources, and the reconciliation policy.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Observation, Reputation, Severity, TagSet, Timestamp};

/// How an installation decides between sources that disagree about reputation and safety.
///
/// Severity is always the highest any source gives, hits always add up, and first/last seen
/// always span every source; the policy picks the one observation ("the master", in Netskope
/// CTE's words) whose reputation and safe verdict the indicator takes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "policy", content = "sources", rename_all = "snake_case")]
pub enum Reconciliation {
    /// The most recently seen observation wins.
    #[default]
    LatestWins,
    /// The observation with the highest severity wins (ties go to the latest).
    HighestSeverityWins,
    /// The first listed source that has an observation wins; unlisted sources only count when
    /// no listed one has spoken, and then the latest wins.
    TrustedSources(Vec<String>),
}

impl fmt::Display for Reconciliation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reconciliation::LatestWins => f.write_str("latest"),
            Reconciliation::HighestSeverityWins => f.write_str("highest-severity"),
            Reconciliation::TrustedSources(list) => write!(f, "trusted:{}", list.join(",")),
        }
    }
}

impl FromStr for Reconciliation {
    type Err = String;

    /// Parses `latest`, `highest-severity` or `trusted:SOURCE,SOURCE,…`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "latest" | "latest-wins" => Ok(Reconciliation::LatestWins),
            "highest-severity" | "highest-severity-wins" | "severity" => {
                Ok(Reconciliation::HighestSeverityWins)
            }
            _ => match s.strip_prefix("trusted:") {
                Some(list) => {
                    let names: Vec<String> = list
                        .split(',')
                        .map(|n| n.trim().to_string())
                        .filter(|n| !n.is_empty())
                        .collect();
                    if names.is_empty() {
                        Err(
                            "trusted: needs at least one source name, as in trusted:intel,edr"
                                .into(),
                        )
                    } else {
                        Ok(Reconciliation::TrustedSources(names))
                    }
                }
                None => Err(format!(
                    "unknown reconciliation policy {s:?}; use latest, highest-severity or trusted:SOURCE,…"
                )),
            },
        }
    }
}

/// One observation with the facts about its source that aggregation needs.
#[derive(Debug, Clone, Copy)]
pub struct SourcedObservation<'a> {
    /// The source's name.
    pub source: &'a str,
    /// How many days after its last sighting this source's observation stops counting
    /// (its configuration's aging criteria).
    pub aging_days: i64,
    /// The observation.
    pub observation: &'a Observation,
}

/// Decisions a user took on the indicator itself, which outrank every source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrides {
    /// Tags a user added (global: they show on the indicator whatever the source).
    #[serde(default, skip_serializing_if = "TagSet::is_empty")]
    pub tags: TagSet,
    /// A user's safe (`true`) or unsafe (`false`) verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe: Option<bool>,
}

/// The indicator-level view over all its observations, kept current on every write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregate {
    /// The highest severity any source gives.
    pub severity: Severity,
    /// The reputation of the reconciled observation (or the default).
    pub reputation: Reputation,
    /// Whether the indicator is safe: the user's verdict, else the reconciled observation's.
    pub safe: bool,
    /// Hits over all sources.
    pub hits: u64,
    /// The earliest first sighting.
    pub first_seen: Timestamp,
    /// The latest sighting.
    pub last_seen: Timestamp,
    /// How many independent sources report it (echoes of iocx's own pushes do not count).
    pub sources: u32,
    /// When the indicator expires: the latest expiry any source gives; `None` when some source
    /// gives none (never expires).
    pub expires: Option<Timestamp>,
    /// When the indicator ages out: the latest `last_seen + aging days` over its sources.
    pub aged_at: Timestamp,
    /// Every source's tags and the user's.
    pub tags: TagSet,
}

impl Aggregate {
    /// Whether the indicator is active at `now`: not expired and not aged out.
    pub fn active_at(&self, now: Timestamp) -> bool {
        self.aged_at > now && self.expires.is_none_or(|e| e > now)
    }
}

/// Computes the aggregate of `observations` under `policy`.
///
/// Echo observations are ignored; when nothing else is left the aggregate is the echoes'
/// (so a value iocx only knows from its own pushes still has sensible fields). Returns `None`
/// for an empty slice.
pub fn aggregate(
    observations: &[SourcedObservation<'_>],
    policy: &Reconciliation,
    overrides: &Overrides,
) -> Option<Aggregate> {
    let independent: Vec<&SourcedObservation<'_>> = observations
        .iter()
        .filter(|o| !o.observation.echo)
        .collect();
    let counted: Vec<&SourcedObservation<'_>> = if independent.is_empty() {
        observations.iter().collect()
    } else {
        independent
    };
    let first = counted.first()?;

    let mut agg = Aggregate {
        severity: Severity::Unknown,
        reputation: Reputation::DEFAULT,
        safe: false,
        hits: 0,
        first_seen: first.observation.first_seen,
        last_seen: first.observation.last_seen,
        sources: 0,
        expires: first.observation.attributes.expires,
        aged_at: Timestamp(i64::MIN),
        tags: overrides.tags.clone(),
    };
    for o in &counted {
        let obs = o.observation;
        agg.severity = agg.severity.max(obs.attributes.severity);
        agg.hits = agg.hits.saturating_add(obs.hits);
        agg.first_seen = agg.first_seen.min(obs.first_seen);
        agg.last_seen = agg.last_seen.max(obs.last_seen);
        if !obs.echo {
            agg.sources += 1;
        }
        agg.expires = match (agg.expires, obs.attributes.expires) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        agg.aged_at = agg.aged_at.max(obs.last_seen.plus_days(o.aging_days));
        agg.tags.extend(&obs.attributes.tags);
    }

    let master = master(&counted, policy);
    agg.reputation = master
        .observation
        .attributes
        .reputation
        .unwrap_or(Reputation::DEFAULT);
    agg.safe = overrides.safe.unwrap_or(master.observation.attributes.safe);
    Some(agg)
}

/// The observation whose reputation and verdict the indicator takes.
fn master<'a, 'b>(
    counted: &[&'b SourcedObservation<'a>],
    policy: &Reconciliation,
) -> &'b SourcedObservation<'a> {
    let latest = |a: &&SourcedObservation<'_>, b: &&SourcedObservation<'_>| {
        (
            a.observation.last_seen,
            a.observation.first_seen,
            std::cmp::Reverse(a.source),
        )
            .cmp(&(
                b.observation.last_seen,
                b.observation.first_seen,
                std::cmp::Reverse(b.source),
            ))
    };
    let pick = match policy {
        Reconciliation::LatestWins => counted.iter().max_by(|a, b| latest(a, b)),
        Reconciliation::HighestSeverityWins => counted.iter().max_by(|a, b| {
            a.observation
                .attributes
                .severity
                .cmp(&b.observation.attributes.severity)
                .then(latest(a, b))
        }),
        Reconciliation::TrustedSources(order) => counted
            .iter()
            .filter_map(|o| {
                order
                    .iter()
                    .position(|n| n == o.source)
                    .map(|rank| (rank, o))
            })
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, o)| o)
            .or_else(|| counted.iter().max_by(|a, b| latest(a, b))),
    };
    // `counted` is never empty here (the caller returned early), so `pick` is always Some.
    pick.copied().unwrap_or(counted[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Attributes;

    fn obs(sev: Severity, rep: u8, last: i64, safe: bool) -> Observation {
        Observation {
            attributes: Attributes {
                severity: sev,
                reputation: Reputation::new(rep),
                safe,
                ..Attributes::default()
            },
            first_seen: Timestamp(last - 10),
            last_seen: Timestamp(last),
            hits: 2,
            echo: false,
        }
    }

    #[test]
    fn policies_pick_the_expected_master() {
        let a = obs(Severity::High, 2, 100, false);
        let b = obs(Severity::Low, 9, 200, true);
        let list = [
            SourcedObservation {
                source: "edr",
                aging_days: 90,
                observation: &a,
            },
            SourcedObservation {
                source: "intel",
                aging_days: 30,
                observation: &b,
            },
        ];
        let none = Overrides::default();
        let latest = aggregate(&list, &Reconciliation::LatestWins, &none).unwrap();
        assert_eq!((latest.reputation.get(), latest.safe), (9, true));
        assert_eq!(latest.severity, Severity::High);
        assert_eq!((latest.hits, latest.sources), (4, 2));
        assert_eq!(
            (latest.first_seen, latest.last_seen),
            (Timestamp(90), Timestamp(200))
        );
        assert_eq!(
            latest.aged_at,
            Timestamp(100)
                .plus_days(90)
                .max(Timestamp(200).plus_days(30))
        );

        let sev = aggregate(&list, &Reconciliation::HighestSeverityWins, &none).unwrap();
        assert_eq!((sev.reputation.get(), sev.safe), (2, false));

        let trusted = aggregate(
            &list,
            &Reconciliation::TrustedSources(vec!["edr".into()]),
            &none,
        )
        .unwrap();
        assert_eq!((trusted.reputation.get(), trusted.safe), (2, false));

        let forced = Overrides {
            safe: Some(false),
            ..Overrides::default()
        };
        assert!(
            !aggregate(&list, &Reconciliation::LatestWins, &forced)
                .unwrap()
                .safe
        );
    }

    #[test]
    fn echoes_do_not_count_as_sources() {
        let mut e = obs(Severity::Critical, 1, 300, false);
        e.echo = true;
        let a = obs(Severity::Low, 5, 100, false);
        let list = [
            SourcedObservation {
                source: "a",
                aging_days: 90,
                observation: &a,
            },
            SourcedObservation {
                source: "b",
                aging_days: 90,
                observation: &e,
            },
        ];
        let agg = aggregate(&list, &Reconciliation::LatestWins, &Overrides::default()).unwrap();
        assert_eq!((agg.sources, agg.severity, agg.hits), (1, Severity::Low, 2));
    }

    #[test]
    fn expiry_is_the_latest_and_none_wins() {
        let mut a = obs(Severity::Low, 5, 100, false);
        a.attributes.expires = Some(Timestamp(500));
        let mut b = a.clone();
        b.attributes.expires = Some(Timestamp(900));
        let list = [
            SourcedObservation {
                source: "a",
                aging_days: 1,
                observation: &a,
            },
            SourcedObservation {
                source: "b",
                aging_days: 1,
                observation: &b,
            },
        ];
        let agg = aggregate(&list, &Reconciliation::LatestWins, &Overrides::default()).unwrap();
        assert_eq!(agg.expires, Some(Timestamp(900)));
        assert!(agg.active_at(Timestamp(150)));
        assert!(!agg.active_at(Timestamp(100 + 86_400)));
        let c = obs(Severity::Low, 5, 100, false);
        let list2 = [
            list[0],
            SourcedObservation {
                source: "c",
                aging_days: 1,
                observation: &c,
            },
        ];
        let agg2 = aggregate(&list2, &Reconciliation::LatestWins, &Overrides::default()).unwrap();
        assert_eq!(agg2.expires, None);
        assert_eq!(
            "trusted:a, b".parse::<Reconciliation>(),
            Ok(Reconciliation::TrustedSources(vec!["a".into(), "b".into()]))
        );
    }
}
