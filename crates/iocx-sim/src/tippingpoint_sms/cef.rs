//! Detection events: reputation hits made up for the entries the database holds, written as
//! the SMS's remote-syslog "ArcSight CEF Format v4.2" lines and as rows of the `ALERTS` table
//! that `dbAccess/tptDBServlet` exports.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::data::Entry;
use super::model::AddressKind;

/// The taxonomy id of reputation filters.
pub const REPUTATION_TAXONOMY: u64 = 33_554_431;
/// The filter number of IP reputation hits.
pub const IP_REPUTATION_SIGNATURE: u32 = 7610;
/// The filter number of DNS reputation hits.
pub const DNS_REPUTATION_SIGNATURE: u32 = 7611;

/// A managed IPS device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its id in the SMS (a UUID).
    pub id: String,
    /// Its name (`dvchost`).
    pub name: String,
    /// Its management address.
    pub ip: Ipv4Addr,
}

impl Device {
    /// The `n`th device: `ips-edge-01`, … on 192.0.2.11 ….
    pub fn numbered(n: usize) -> Device {
        Device {
            id: format!("00000003-0003-0003-0003-{:012}", n + 1),
            name: format!("ips-edge-{:02}", n + 1),
            ip: Ipv4Addr::new(192, 0, 2, 11 + (n % 200) as u8),
        }
    }

    /// A device with this name (for events asked for by name).
    pub fn named(name: &str, n: usize) -> Device {
        Device {
            name: name.to_string(),
            ..Device::numbered(n)
        }
    }
}

/// One reputation hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Per-device sequence number (set when recorded).
    pub sequence: u64,
    /// The SMS event id (set when recorded).
    pub external_id: u64,
    /// The device that saw it.
    pub device: Device,
    /// When the flow began.
    pub begin: DateTime<Utc>,
    /// When the (aggregated) event ended; `rt`.
    pub end: DateTime<Utc>,
    /// 7610 (IP) or 7611 (DNS/URL).
    pub signature: u32,
    /// The reputation filter's name (CEF header Name).
    pub filter_name: String,
    /// SMS severity: 1 low, 2 minor, 3 major, 4 critical.
    pub severity: u8,
    /// The matched entry's address as the SMS holds it.
    pub entry: String,
    /// The matched value (`cs6`): the IP, the domain or the URL that hit.
    pub matched: String,
    /// Source address and port.
    pub src: IpAddr,
    /// Source port.
    pub spt: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dpt: u16,
    /// `TCP`, `UDP`, `IP`.
    pub proto: &'static str,
    /// `Block` or `Permit`.
    pub action: String,
    /// Aggregated hit count (`cnt`).
    pub count: u64,
    /// The request URI, for URL and DNS hits.
    pub request: Option<String>,
    /// The destination host name, for URL and DNS hits.
    pub dhost: Option<String>,
    /// The profile the filter is in.
    pub profile: String,
}

impl Event {
    /// The event as `/_sim/events` lists it.
    pub fn to_json(&self) -> Value {
        json!({
            "sequence": self.sequence,
            "external_id": self.external_id,
            "device": self.device.name,
            "rt": self.end.timestamp_millis(),
            "signature": self.signature,
            "filter_name": self.filter_name,
            "severity": self.severity,
            "entry": self.entry,
            "matched": self.matched,
            "src": self.src.to_string(),
            "spt": self.spt,
            "dst": self.dst.to_string(),
            "dpt": self.dpt,
            "act": self.action,
            "cnt": self.count,
            "request": self.request,
        })
    }
}

/// What an asked-for hit looks like.
#[derive(Debug, Clone)]
pub struct HitSpec {
    /// The device that sees it.
    pub device: Device,
    /// The action.
    pub action: String,
    /// Aggregated count per event.
    pub count: u64,
    /// SMS severity 1..=4.
    pub severity: u8,
    /// The filter name.
    pub filter_name: String,
    /// The profile name.
    pub profile: String,
    /// The filter number of URL hits.
    pub url_signature: u32,
}

fn internal_v4(rng: &mut impl rand::Rng) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        rng.gen_range(0..4),
        rng.gen_range(0..255),
        rng.gen_range(2..254),
    ))
}

/// A concrete address inside an entry's address or block.
fn host_in(address: &str, rng: &mut impl rand::Rng) -> Option<IpAddr> {
    let (ip, len) = match address.split_once('/') {
        Some((ip, len)) => (ip, len.parse::<u32>().ok()?),
        None => (address, u32::MAX),
    };
    match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) if len < 32 => {
            let span = 1u64 << (32 - len);
            let offset = if span > 2 {
                rng.gen_range(1..span - 1)
            } else {
                0
            };
            Some(IpAddr::V4(Ipv4Addr::from(
                u32::from(v4).wrapping_add(offset as u32),
            )))
        }
        IpAddr::V6(v6) if len < 128 => Some(IpAddr::V6(Ipv6Addr::from(
            u128::from(v6).wrapping_add(rng.gen_range(1..1000)),
        ))),
        other => Some(other),
    }
}

/// Makes up a hit on `entry` (unnumbered; [`super::State::record`] numbers it).
pub fn hit(entry: &Entry, spec: &HitSpec, now: DateTime<Utc>, rng: &mut impl rand::Rng) -> Event {
    let begin = now - chrono::Duration::milliseconds(rng.gen_range(0..5000));
    let client = internal_v4(rng);
    let (signature, matched, src, spt, dst, dpt, proto, request, dhost) = match entry.kind {
        AddressKind::Ipv4 | AddressKind::Ipv6 => {
            let bad = host_in(&entry.address, rng).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            let client = if bad.is_ipv6() {
                IpAddr::V6(Ipv6Addr::new(
                    0xfd00,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    rng.gen_range(2..0xffff),
                ))
            } else {
                client
            };
            let port = [443u16, 80, 8080, 22, 3389][rng.gen_range(0..5)];
            // Mostly outbound (an internal host calling out), sometimes inbound.
            let (src, spt, dst, dpt) = if rng.gen_bool(0.75) {
                (client, rng.gen_range(32768..61000), bad, port)
            } else {
                (bad, rng.gen_range(32768..61000), client, port)
            };
            (
                IP_REPUTATION_SIGNATURE,
                bad.to_string(),
                src,
                spt,
                dst,
                dpt,
                "TCP",
                None,
                None,
            )
        }
        AddressKind::Dns => {
            let name = entry
                .address
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let resolver = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 53));
            (
                DNS_REPUTATION_SIGNATURE,
                name.clone(),
                client,
                rng.gen_range(32768..61000),
                resolver,
                53,
                "UDP",
                None,
                Some(name),
            )
        }
        AddressKind::Url => {
            let host = entry
                .address
                .split_once("://")
                .map_or(entry.address.as_str(), |(_, r)| r)
                .split(['/', '?', '#'])
                .next()
                .unwrap_or("")
                .to_string();
            let server = IpAddr::V4(Ipv4Addr::new(203, 0, 113, rng.gen_range(1..255)));
            (
                spec.url_signature,
                entry.address.clone(),
                client,
                rng.gen_range(32768..61000),
                server,
                if entry.address.starts_with("https") {
                    443
                } else {
                    80
                },
                "TCP",
                Some(entry.address.clone()),
                Some(host),
            )
        }
    };
    Event {
        sequence: 0,
        external_id: 0,
        device: spec.device.clone(),
        begin,
        end: now,
        signature,
        filter_name: spec.filter_name.clone(),
        severity: spec.severity,
        entry: entry.address.clone(),
        matched,
        src,
        spt,
        dst,
        dpt,
        proto,
        action: spec.action.clone(),
        count: spec.count,
        request,
        dhost,
        profile: spec.profile.clone(),
    }
}

fn escape_header(text: &str) -> String {
    text.replace('\\', "\\\\").replace('|', "\\|")
}

fn escape_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('=', "\\=")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

/// The signature's UUID (`cs3`, `SIGNATURE_ID`).
pub fn signature_uuid(number: u32) -> String {
    format!("00000001-0001-0001-0001-{number:012}")
}

/// The policy's UUID (`cs2`, `POLICY_ID`).
pub fn policy_uuid(number: u32) -> String {
    format!("00000002-0002-0002-0002-{number:012}")
}

/// The CEF record: `CEF:0|TippingPoint|UnityOne|<ver>|<sig>|<name>|<sev>|<extension>`.
pub fn cef_record(event: &Event, sms_name: &str) -> String {
    let v6 = event.src.is_ipv6() || event.dst.is_ipv6();
    let mut ext: Vec<(&str, String)> = vec![
        ("rt", event.end.timestamp_millis().to_string()),
        ("cat", "Reputation".into()),
        ("proto", event.proto.into()),
        ("app", event.proto.into()),
        ("cnt", event.count.to_string()),
        ("act", event.action.clone()),
        ("cn1", "0".into()),
        ("cn1Label", "VLAN ID".into()),
        ("cn2", REPUTATION_TAXONOMY.to_string()),
        ("cn2Label", "Taxonomy".into()),
        ("cn3", "0".into()),
        ("cn3Label", "Packet Trace".into()),
        ("cs1", event.profile.clone()),
        ("cs1Label", "Profile Name".into()),
        ("cs2", policy_uuid(event.signature)),
        ("cs2Label", "Policy UUID".into()),
        ("cs3", signature_uuid(event.signature)),
        ("cs3Label", "Signature UUID".into()),
        ("cs4", "1A-1B".into()),
        ("cs4Label", "ZoneNames".into()),
        ("cs5", sms_name.into()),
        ("cs5Label", "SMS Name".into()),
        ("dvchost", event.device.name.clone()),
        ("cs6", event.matched.clone()),
        ("cs6Label", "Filter Message Parms".into()),
        ("externalId", event.external_id.to_string()),
    ];
    if v6 {
        ext.push(("c6a2", event.src.to_string()));
        ext.push(("c6a2Label", "Source IPv6".into()));
        ext.push(("c6a3", event.dst.to_string()));
        ext.push(("c6a3Label", "Destination IPv6".into()));
    } else {
        ext.push(("src", event.src.to_string()));
        ext.push(("dst", event.dst.to_string()));
    }
    ext.push(("spt", event.spt.to_string()));
    ext.push(("dpt", event.dpt.to_string()));
    if let Some(r) = &event.request {
        ext.push(("request", r.clone()));
    }
    if let Some(h) = &event.dhost {
        ext.push(("dhost", h.clone()));
    }
    let extension: Vec<String> = ext
        .iter()
        .map(|(k, v)| format!("{k}={}", escape_value(v)))
        .collect();
    format!(
        "CEF:0|TippingPoint|UnityOne|1.0.0.17|{}|{}|{}|{}",
        event.signature,
        escape_header(&event.filter_name),
        event.severity,
        extension.join(" ")
    )
}

/// The syslog line: `<PRI>Mmm dd HH:MM:SS [host ]CEF:…` (RFC 3164 header, the event's own time).
pub fn syslog_line(event: &Event, sms_name: &str, facility: u8, with_host: bool) -> String {
    let severity = match event.severity {
        4 => 2,
        3 => 3,
        2 => 4,
        1 => 5,
        _ => 6,
    };
    let pri = u16::from(facility.min(23)) * 8 + severity;
    let stamp = event.end.format("%b %e %H:%M:%S");
    if with_host {
        format!("<{pri}>{stamp} {sms_name} {}", cef_record(event, sms_name))
    } else {
        format!("<{pri}>{stamp} {}", cef_record(event, sms_name))
    }
}

/// The columns of the `ALERTS` table, in order.
pub const ALERT_COLUMNS: [&str; 43] = [
    "SEQUENCE_NUM",
    "DEVICE_ID",
    "ALERT_TYPE_ID",
    "POLICY_ID",
    "SIGNATURE_ID",
    "BEGIN_TIME",
    "END_TIME",
    "HIT_COUNT",
    "SRC_IP_ADDR",
    "SRC_IP_ADDR_HIGH",
    "SRC_PORT",
    "DST_IP_ADDR",
    "DST_IP_ADDR_HIGH",
    "DST_PORT",
    "VIRTUAL_SEGMENT_INDEX",
    "PHYSICAL_PORT_IN",
    "VLAN_TAG",
    "SEVERITY",
    "PACKET_TRACE",
    "DEVICE_TRACE_BUCKET",
    "DEVICE_TRACE_BEGIN_SEQ",
    "DEVICE_TRACE_END_SEQ",
    "MESSAGE_PARMS",
    "QUARANTINE_ACTION",
    "FLOW_CONTROL",
    "ACTION_SET_UUID",
    "ACTION_SET_NAME",
    "RATE_LIMIT_RATE",
    "CLIENT_IP_ADDR",
    "CLIENT_IP_ADDR_HIGH",
    "XFF_IP_ADDR",
    "XFF_IP_ADDR_HIGH",
    "TCIP_IP_ADDR",
    "TCIP_IP_ADDR_HIGH",
    "URI_METHOD",
    "URI_HOST",
    "URI_STRING",
    "SRC_USER_NAME",
    "SRC_DOMAIN",
    "SRC_MACHINE",
    "DST_USER_NAME",
    "DST_DOMAIN",
    "DST_MACHINE",
];

/// An address as the database stores it: IPv4 as one integer (high part 0), IPv6 as its low and
/// high 64 bits.
pub fn numeric_ip(ip: IpAddr) -> (u64, u64) {
    match ip {
        IpAddr::V4(v4) => (u64::from(u32::from(v4)), 0),
        IpAddr::V6(v6) => {
            let n = u128::from(v6);
            (n as u64, (n >> 64) as u64)
        }
    }
}

/// The event as a row of `ALERTS` (values as text, in [`ALERT_COLUMNS`] order).
pub fn alert_row(event: &Event) -> Vec<String> {
    let (src, src_high) = numeric_ip(event.src);
    let (dst, dst_high) = numeric_ip(event.dst);
    let (uri_host, uri) = match (&event.dhost, &event.request) {
        (Some(h), Some(r)) => (h.clone(), r.clone()),
        (Some(h), None) => (h.clone(), String::new()),
        _ => (String::new(), String::new()),
    };
    vec![
        event.sequence.to_string(),
        event.device.id.clone(),
        "1".into(),
        policy_uuid(event.signature),
        signature_uuid(event.signature),
        event.begin.timestamp_millis().to_string(),
        event.end.timestamp_millis().to_string(),
        event.count.to_string(),
        src.to_string(),
        src_high.to_string(),
        event.spt.to_string(),
        dst.to_string(),
        dst_high.to_string(),
        event.dpt.to_string(),
        "1".into(),
        "1".into(),
        "0".into(),
        event.severity.to_string(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        event.matched.clone(),
        "0".into(),
        if event.action == "Block" { "1" } else { "0" }.into(),
        format!(
            "00000004-0004-0004-0004-{:012}",
            if event.action == "Block" { 1 } else { 2 }
        ),
        event.action.clone(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        if uri.is_empty() {
            String::new()
        } else {
            "GET".into()
        },
        uri_host,
        uri,
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ]
}

/// Whether a column of `ALERTS` is numeric (for the XML and SQL exports).
pub fn numeric_column(name: &str) -> bool {
    matches!(
        name,
        "SEQUENCE_NUM"
            | "ALERT_TYPE_ID"
            | "BEGIN_TIME"
            | "END_TIME"
            | "HIT_COUNT"
            | "SRC_IP_ADDR"
            | "SRC_IP_ADDR_HIGH"
            | "SRC_PORT"
            | "DST_IP_ADDR"
            | "DST_IP_ADDR_HIGH"
            | "DST_PORT"
            | "VIRTUAL_SEGMENT_INDEX"
            | "PHYSICAL_PORT_IN"
            | "VLAN_TAG"
            | "SEVERITY"
            | "PACKET_TRACE"
            | "DEVICE_TRACE_BUCKET"
            | "DEVICE_TRACE_BEGIN_SEQ"
            | "DEVICE_TRACE_END_SEQ"
            | "QUARANTINE_ACTION"
            | "FLOW_CONTROL"
            | "RATE_LIMIT_RATE"
            | "CLIENT_IP_ADDR"
            | "CLIENT_IP_ADDR_HIGH"
            | "XFF_IP_ADDR"
            | "XFF_IP_ADDR_HIGH"
            | "TCIP_IP_ADDR"
            | "TCIP_IP_ADDR_HIGH"
    )
}

/// Formats a table (`columns` and `rows`) as the servlet's `csv`, `xml` or `sql` export.
pub fn export(
    table: &str,
    columns: &[&str],
    rows: &[Vec<String>],
    format: &str,
    csv_header: bool,
) -> String {
    match format {
        "xml" => {
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resultset>\n");
            out.push_str(&format!("<table name=\"{}\">\n", xml_escape(table)));
            for c in columns {
                let kind = if numeric_column(c) {
                    "NUMBER"
                } else {
                    "VARCHAR"
                };
                out.push_str(&format!("<column name=\"{c}\" type=\"{kind}\"/>\n"));
            }
            out.push_str("<data>\n");
            for row in rows {
                out.push_str("<r>");
                for v in row {
                    out.push_str(&format!("<c>{}</c>", xml_escape(v)));
                }
                out.push_str("</r>\n");
            }
            out.push_str("</data>\n</table>\n</resultset>\n");
            out
        }
        "sql" => {
            let mut out = String::new();
            for row in rows {
                let values: Vec<String> = columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| {
                        if numeric_column(c) && !v.is_empty() {
                            v.clone()
                        } else {
                            format!("'{}'", v.replace('\'', "''"))
                        }
                    })
                    .collect();
                out.push_str(&format!(
                    "INSERT INTO {table} ({}) VALUES ({});\n",
                    columns.join(","),
                    values.join(",")
                ));
            }
            out
        }
        _ => {
            let mut out = String::new();
            if csv_header {
                out.push_str(&columns.join(","));
                out.push('\n');
            }
            for row in rows {
                let fields: Vec<String> =
                    row.iter().map(|v| super::model::quote_field(v)).collect();
                out.push_str(&fields.join(","));
                out.push('\n');
            }
            out
        }
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
