//! Reputation hits, from either source — a row of the ALERTS export or a remote-syslog CEF
//! record — and the sighting records they add up to: one per matched entry and device.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use iocx_model::{Indicator, ParseOptions, Record, Severity, TagSet, Timestamp, parse};

use crate::cef::CefRecord;

/// The filter number of IP reputation hits.
const IP_REPUTATION: &str = "7610";
/// The filter number of DNS (and URL) reputation hits.
const DNS_REPUTATION: &str = "7611";

/// One reputation hit: which entry, on which device, how often, when.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hit {
    /// The matched entry's value as the event names it.
    pub value: String,
    /// The device (a `DEVICE_ID` or a `dvchost`).
    pub device: String,
    /// Aggregated hit count (at least 1).
    pub hits: u64,
    /// When the event ended.
    pub when: Option<Timestamp>,
    /// The event's severity.
    pub severity: Severity,
    /// The action taken (`Block`, `Permit`), when known.
    pub action: Option<String>,
}

/// SMS severities as the ALERTS table holds them: 1 low, 2 minor, 3 major, 4 critical.
pub(crate) fn sms_severity(n: &str) -> Severity {
    match n.trim() {
        "4" => Severity::Critical,
        "3" => Severity::High,
        "2" => Severity::Medium,
        "1" => Severity::Low,
        _ => Severity::Unknown,
    }
}

/// A CEF header Severity. The SMS's "Severity in Event" puts its own 1–4 scale there, so 0–4
/// read as in the ALERTS table; 5–10 are the CEF scale (5–6 medium, 7–8 high, 9–10 critical);
/// words (`Low`, `Medium`, `High`, `Very-High`) as they say.
fn cef_severity(text: &str) -> Severity {
    match text.trim().parse::<u8>() {
        Ok(n @ 0..=4) => sms_severity(&n.to_string()),
        Ok(5 | 6) => Severity::Medium,
        Ok(7 | 8) => Severity::High,
        Ok(9 | 10) => Severity::Critical,
        Ok(_) => Severity::Unknown,
        Err(_) => match text.trim().to_ascii_lowercase().as_str() {
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "very-high" | "veryhigh" | "critical" => Severity::Critical,
            _ => Severity::Unknown,
        },
    }
}

/// `rt`: epoch milliseconds as the SMS sends it (10 digits or fewer read as seconds), or the
/// CEF date form `Mmm dd yyyy HH:mm:ss` (UTC).
fn event_time(rt: &str) -> Option<Timestamp> {
    let rt = rt.trim();
    if let Ok(n) = rt.parse::<i64>() {
        return Some(Timestamp(if rt.len() > 10 { n / 1000 } else { n }));
    }
    chrono::NaiveDateTime::parse_from_str(rt, "%b %d %Y %H:%M:%S")
        .ok()
        .map(|d| Timestamp(d.and_utc().timestamp()))
}

/// Whether an address is an outside one (a reputation entry), not an internal host.
fn is_outside(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback() || v6.is_unspecified() || first & 0xfe00 == 0xfc00)
                && first & 0xffc0 != 0xfe80
        }
    }
}

/// The reputation hit a CEF record reports, or why it is not one (a reason code for the run's
/// counts).
///
/// A record is a reputation hit when `cat=Reputation` (or, without `cat`, when its filter is
/// 7610 or 7611). The matched entry is the custom field labelled "Filter Message Parms" (`cs6`;
/// its first `|`-separated part); without it, `request` (URL hits), then `dhost` (DNS hits), then
/// whichever of the source and destination addresses is the one outside address. The device is
/// `dvchost` (then `dvc`, then the syslog header's host).
pub(crate) fn cef_hit(r: &CefRecord) -> Result<Hit, &'static str> {
    let reputation = match r.get("cat") {
        Some(cat) => cat.trim().eq_ignore_ascii_case("reputation"),
        None => matches!(r.signature_id.trim(), IP_REPUTATION | DNS_REPUTATION),
    };
    if !reputation {
        return Err("not_a_reputation_hit");
    }
    let nonempty = |v: Option<&str>| {
        v.map(|s| s.split('|').next().unwrap_or("").trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let addresses = || {
        let src = r.get("src").or_else(|| r.get("c6a2"));
        let dst = r.get("dst").or_else(|| r.get("c6a3"));
        let outside: Vec<IpAddr> = [src, dst]
            .into_iter()
            .flatten()
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .filter(|ip| is_outside(*ip))
            .collect();
        match outside.as_slice() {
            [one] => Some(one.to_string()),
            _ => None,
        }
    };
    let value = nonempty(r.labeled("Filter Message Parms"))
        .or_else(|| nonempty(r.get("cs6")))
        .or_else(|| nonempty(r.get("request")))
        .or_else(|| nonempty(r.get("dhost")))
        .or_else(addresses)
        .ok_or("no_matched_entry")?;
    let device = nonempty(r.get("dvchost"))
        .or_else(|| nonempty(r.get("dvc")))
        .or_else(|| r.syslog.host.clone())
        .unwrap_or_else(|| "unknown".to_string());
    Ok(Hit {
        value,
        device,
        hits: r
            .get("cnt")
            .and_then(|c| c.trim().parse::<u64>().ok())
            .unwrap_or(1)
            .max(1),
        when: r.get("rt").and_then(event_time),
        severity: cef_severity(&r.severity),
        action: nonempty(r.get("act")),
    })
}

/// Sighting records being added up: one per (indicator, device), hits summed, first and last
/// seen widened, tags `device:NAME`, `tippingpoint:hit` and `action:ACT`.
#[derive(Debug, Default)]
pub(crate) struct Sightings {
    records: Vec<Record>,
    index: HashMap<(Indicator, String), usize>,
    /// Hits that did not become records, by reason.
    pub rejected: BTreeMap<String, u64>,
}

impl Sightings {
    /// Counts one hit that was not usable.
    pub fn reject(&mut self, reason: &str) {
        self.reject_many(reason, 1);
    }

    /// Counts `n` hits that were not usable.
    pub fn reject_many(&mut self, reason: &str, n: u64) {
        *self.rejected.entry(reason.to_string()).or_default() += n;
    }

    /// Adds a hit (rejected when its value is not an indicator).
    pub fn add(&mut self, hit: Hit) {
        let indicator = match parse(&hit.value, None, &ParseOptions::default()) {
            Ok(p) => p.first().clone(),
            Err(e) => {
                self.reject(e.reason());
                return;
            }
        };
        let action = hit
            .action
            .as_deref()
            .map(|a| format!("action:{}", a.to_ascii_lowercase()));
        match self.index.get(&(indicator.clone(), hit.device.clone())) {
            Some(&i) => {
                let r = &mut self.records[i];
                r.hits = r.hits.saturating_add(hit.hits);
                r.last_seen = r.last_seen.max(hit.when);
                r.first_seen = match (r.first_seen, hit.when) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                r.attributes.severity = r.attributes.severity.max(hit.severity);
                if let Some(a) = &action {
                    r.attributes.tags.insert(a);
                }
            }
            None => {
                let mut r = Record::new(indicator.clone());
                r.hits = hit.hits;
                r.attributes.severity = hit.severity;
                let device = format!("device:{}", hit.device);
                r.attributes.tags = TagSet::from_tags(
                    [
                        Some(device.as_str()),
                        Some("tippingpoint:hit"),
                        action.as_deref(),
                    ]
                    .into_iter()
                    .flatten(),
                );
                r.first_seen = hit.when;
                r.last_seen = hit.when;
                self.index
                    .insert((indicator, hit.device), self.records.len());
                self.records.push(r);
            }
        }
    }

    /// Whether nothing was added or rejected.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.rejected.is_empty()
    }

    /// The records and rejections so far; starts over.
    pub fn take(&mut self) -> (Vec<Record>, BTreeMap<String, u64>) {
        self.index.clear();
        (
            std::mem::take(&mut self.records),
            std::mem::take(&mut self.rejected),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::cef::parse as cef;

    const LINE: &str = "<131>Jun  3 12:00:01 sms-01 CEF:0|TippingPoint|UnityOne|1.0.0.17|7610|iocx Reputation Block|3|rt=1717416001000 cat=Reputation proto=TCP app=TCP cnt=2 act=Block cn2=33554431 cn2Label=Taxonomy cs1=Default cs1Label=Profile Name dvchost=ips-edge-01 cs6=198.51.100.7 cs6Label=Filter Message Parms externalId=1 src=10.1.2.3 dst=198.51.100.7 spt=50123 dpt=443";

    #[test]
    fn an_ip_reputation_record_is_a_hit_on_its_entry_and_device() {
        let hit = cef_hit(&cef(LINE).unwrap()).unwrap();
        assert_eq!(hit.value, "198.51.100.7");
        assert_eq!(hit.device, "ips-edge-01");
        assert_eq!(hit.hits, 2);
        assert_eq!(hit.when, Some(Timestamp(1_717_416_001)));
        assert_eq!(hit.severity, Severity::High);
        assert_eq!(hit.action.as_deref(), Some("Block"));
    }

    #[test]
    fn fallbacks_when_cs6_is_missing() {
        let base = "CEF:0|TippingPoint|UnityOne|1|7611|f|7|cat=Reputation";
        let url = cef(&format!(
            "{base} request=http://evil.example/a dhost=evil.example dvc=192.0.2.1"
        ))
        .unwrap();
        let hit = cef_hit(&url).unwrap();
        assert_eq!(
            (hit.value.as_str(), hit.device.as_str()),
            ("http://evil.example/a", "192.0.2.1")
        );
        assert_eq!(hit.severity, Severity::High);
        let dns = cef(&format!("{base} dhost=evil.example")).unwrap();
        assert_eq!(cef_hit(&dns).unwrap().value, "evil.example");
        let ip = cef(&format!("{base} src=10.0.0.5 dst=203.0.113.9")).unwrap();
        assert_eq!(cef_hit(&ip).unwrap().value, "203.0.113.9");
        let both_inside = cef(&format!("{base} src=10.0.0.5 dst=10.0.0.6")).unwrap();
        assert_eq!(cef_hit(&both_inside), Err("no_matched_entry"));
        let v6 = cef(&format!(
            "{base} c6a2=fd00::5 c6a3=2001:db8::7 dvchost=ips-2"
        ))
        .unwrap();
        assert_eq!(cef_hit(&v6).unwrap().value, "2001:db8::7");
        // The syslog host stands in for a missing device.
        let hosted = cef(&format!("<13>Jun 3 12:00:01 sms-9 {base} cs6=evil.example")).unwrap();
        assert_eq!(cef_hit(&hosted).unwrap().device, "sms-9");
    }

    #[test]
    fn other_events_are_not_hits() {
        let r = cef("CEF:0|TippingPoint|UnityOne|1|1234|HTTP: SQL injection|8|cat=Exploits dvchost=ips-1 src=203.0.113.1").unwrap();
        assert_eq!(cef_hit(&r), Err("not_a_reputation_hit"));
        let r =
            cef("CEF:0|TippingPoint|UnityOne|1|7610|f|3|dvchost=ips-1 cs6=198.51.100.7").unwrap();
        assert!(
            cef_hit(&r).is_ok(),
            "a reputation filter number without cat"
        );
    }

    #[test]
    fn times_and_severities() {
        assert_eq!(event_time("1717416001"), Some(Timestamp(1_717_416_001)));
        assert_eq!(
            event_time("Jun 03 2024 12:00:01"),
            Some(Timestamp(1_717_416_001))
        );
        assert_eq!(event_time("yesterday"), None);
        assert_eq!(cef_severity("1"), Severity::Low);
        assert_eq!(cef_severity("10"), Severity::Critical);
        assert_eq!(cef_severity("Very-High"), Severity::Critical);
        assert_eq!(cef_severity("x"), Severity::Unknown);
    }

    #[test]
    fn hits_add_up_per_entry_and_device() {
        let mut s = Sightings::default();
        let hit = cef_hit(&cef(LINE).unwrap()).unwrap();
        s.add(hit.clone());
        s.add(Hit {
            when: Some(Timestamp(1_717_416_100)),
            action: Some("Permit".into()),
            ..hit.clone()
        });
        s.add(Hit {
            device: "ips-edge-02".into(),
            ..hit.clone()
        });
        s.add(Hit {
            value: "not an indicator".into(),
            ..hit
        });
        let (records, rejected) = s.take();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].hits, 4);
        assert_eq!(records[0].first_seen, Some(Timestamp(1_717_416_001)));
        assert_eq!(records[0].last_seen, Some(Timestamp(1_717_416_100)));
        assert!(records[0].attributes.tags.contains("action:permit"));
        assert!(records[0].attributes.tags.contains("action:block"));
        assert!(records[1].attributes.tags.contains("device:ips-edge-02"));
        assert_eq!(rejected.values().sum::<u64>(), 1);
        assert!(s.is_empty());
    }
}
