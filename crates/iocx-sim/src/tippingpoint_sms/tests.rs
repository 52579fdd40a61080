//! Unit tests of the pieces that need no server: address normalisation, field splitting, tag
//! category rules, TTL dates, CEF escaping and the ALERTS row. The HTTP and syslog behaviour is
//! tested against a real server in `tests/tippingpoint_sms.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone as _, Utc};

use super::*;

#[test]
fn addresses_normalise_as_the_sms_stores_them() {
    assert_eq!(
        normalize(Param::Ip, "192.168.66.127/24").unwrap(),
        (AddressKind::Ipv4, "192.168.66.0/24".to_string())
    );
    assert_eq!(
        normalize(Param::Ip, " 1.1.1.1/32 ").unwrap(),
        (AddressKind::Ipv4, "1.1.1.1".to_string())
    );
    assert_eq!(
        normalize(Param::Ip, "2001:DB8::1:2/64").unwrap(),
        (AddressKind::Ipv6, "2001:db8::/64".to_string())
    );
    assert_eq!(
        normalize(Param::Ip, "0.0.0.0/0").unwrap().1,
        "0.0.0.0/0".to_string()
    );
    assert!(normalize(Param::Ip, "1.1.1.1/33").is_err());
    assert!(normalize(Param::Ip, "1.1.1").is_err());
    assert!(normalize(Param::Ip, "").is_err());
    assert_eq!(
        normalize(Param::Dns, "WWW.Foo.COM.").unwrap().1,
        "www.foo.com"
    );
    assert_eq!(normalize(Param::Dns, "[Foo.com]").unwrap().1, "[foo.com]");
    assert!(normalize(Param::Dns, "bad name.com").is_err());
    assert!(normalize(Param::Url, "http://x.example/a b").is_err());
    assert_eq!(
        normalize(Param::Url, "http://x.example/a?b=1").unwrap().0,
        AddressKind::Url
    );
}

#[test]
fn fields_split_with_csv_quoting() {
    assert_eq!(
        split_fields(
            "MalwareIpType,infectedHost,CreatedDate,\"Jan 22, 2014\"",
            ','
        )
        .unwrap(),
        [
            "MalwareIpType",
            "infectedHost",
            "CreatedDate",
            "Jan 22, 2014"
        ]
    );
    assert_eq!(
        split_fields("a,\"say \"\"hi\"\"\",,c", ',').unwrap(),
        ["a", "say \"hi\"", "", "c"]
    );
    assert_eq!(
        split_fields("http://x.example/a,b|MalwareType|malwareSource", '|').unwrap(),
        ["http://x.example/a,b", "MalwareType", "malwareSource"]
    );
    assert!(split_fields("a,\"open", ',').is_err());
}

#[test]
fn categories_check_values_by_type() {
    let list = Category::parse_spec("MalwareIpType=list:cncHost,infectedHost").unwrap();
    assert_eq!(list.check("cncHost", false).unwrap(), ["cncHost"]);
    assert!(list.check("CNCHOST", false).is_err(), "case matters");
    assert!(list.check("cncHost~~~infectedHost", false).is_err());
    let multi = Category::parse_spec("Kinds=multilist:cncHost,infectedHost").unwrap();
    assert_eq!(
        multi.check("cncHost~~~infectedHost", false).unwrap(),
        ["cncHost", "infectedHost"]
    );
    let range = Category::parse_spec("Score=range:1-100").unwrap();
    assert!(range.check("100", false).is_ok());
    assert!(range.check("0", false).is_err());
    assert!(range.check("5.5", false).is_err());
    let yes = Category::parse_spec("Blocked=yesno").unwrap();
    assert_eq!(yes.check("TRUE", false).unwrap(), ["yes"]);
    assert_eq!(yes.check("nope", false).unwrap(), ["no"]);
    let text = Category::parse_spec("Note=text").unwrap();
    assert!(text.check(&"x".repeat(256), false).is_err());
    assert!(Category::parse_spec("Bad").is_err());
    assert!(Category::parse_spec("Bad=range:9-1").is_err());
    assert!(Category::parse_spec("Bad=list:").is_err());
    assert!(Category::parse_spec("a,b=text").is_err());
    let ttl = default_categories()
        .into_iter()
        .find(|c| c.name == TTL_CATEGORY)
        .unwrap();
    assert!(ttl.check("2018-10-25 07:15:00-0400", false).is_ok());
    assert!(ttl.check("2018-10-25T07:15:00Z", false).is_err());
    assert!(ttl.check("2018-10-25T07:15:00Z", true).is_ok());
    assert!(ttl.check("tomorrow", true).is_err());
}

#[test]
fn ttl_dates_parse_with_their_offset() {
    let t = parse_date("2018-10-25 07:15:00-0400", TTL_FORMAT, false).unwrap();
    assert_eq!(t, Utc.with_ymd_and_hms(2018, 10, 25, 11, 15, 0).unwrap());
    assert_eq!(format_ttl(t), "2018-10-25 11:15:00+0000");
    assert_eq!(parse_date(&format_ttl(t), TTL_FORMAT, false), Some(t));
}

#[test]
fn the_default_categories_include_vision_ones() {
    let names: Vec<String> = default_categories().into_iter().map(|c| c.name).collect();
    for n in [
        "Trend Micro Detection Category",
        "Trend Micro Publisher",
        "Trend Micro Source",
        "Trend Micro Suspicious Object Source",
        "Trend Micro Severity",
        "Trend Micro Scan Action",
        "Reputation Entries TTL",
    ] {
        assert!(names.iter().any(|x| x == n), "{n}");
    }
}

fn sample_event() -> Event {
    let entry = Entry {
        kind: AddressKind::Dns,
        address: "[bad.example]".into(),
        tags: Vec::new(),
        origin: EntryOrigin::User,
        created: Utc::now(),
        updated: Utc::now(),
        ttl: None,
    };
    let spec = HitSpec {
        device: Device::numbered(0),
        action: "Block".into(),
        count: 3,
        severity: 4,
        filter_name: "Rep|Filter".into(),
        profile: "a=b".into(),
        url_signature: DNS_REPUTATION_SIGNATURE,
    };
    let mut rng = rand::rngs::mock::StepRng::new(7, 13);
    hit(
        &entry,
        &spec,
        Utc.with_ymd_and_hms(2024, 6, 3, 12, 0, 1).unwrap(),
        &mut rng,
    )
}

#[test]
fn cef_records_escape_and_carry_the_reputation_fields() {
    let e = sample_event();
    let record = cef_record(&e, "sms-01");
    assert!(
        record.starts_with("CEF:0|TippingPoint|UnityOne|1.0.0.17|7611|Rep\\|Filter|4|rt=1717416001000 cat=Reputation "),
        "{record}"
    );
    assert!(
        record.contains(" cs1=a\\=b cs1Label=Profile Name "),
        "{record}"
    );
    assert!(record.contains(" cs6=bad.example cs6Label=Filter Message Parms "));
    assert!(record.contains(" cn2=33554431 cn2Label=Taxonomy "));
    assert!(record.contains(" cnt=3 "));
    assert!(record.contains(" dvchost=ips-edge-01 "));
    assert!(record.contains(" dpt=53"));
    let line = syslog_line(&e, "sms-01", 16, true);
    assert!(
        line.starts_with("<130>Jun  3 12:00:01 sms-01 CEF:0|"),
        "{line}"
    );
    let bare = syslog_line(&e, "sms-01", 1, false);
    assert!(bare.starts_with("<10>Jun  3 12:00:01 CEF:0|"), "{bare}");
}

#[test]
fn alert_rows_match_the_columns_and_store_numeric_ips() {
    let e = sample_event();
    let row = alert_row(&e);
    assert_eq!(row.len(), ALERT_COLUMNS.len());
    let col = |name: &str| &row[ALERT_COLUMNS.iter().position(|c| *c == name).unwrap()];
    assert_eq!(
        col("DST_IP_ADDR"),
        &u32::from(std::net::Ipv4Addr::new(10, 0, 0, 53)).to_string()
    );
    assert_eq!(col("DST_IP_ADDR_HIGH"), "0");
    assert_eq!(col("MESSAGE_PARMS"), "bad.example");
    assert_eq!(col("END_TIME"), "1717416001000");
    assert_eq!(col("HIT_COUNT"), "3");
    let (low, high) = numeric_ip("2001:db8::1".parse().unwrap());
    assert_eq!(high, 0x2001_0db8_0000_0000);
    assert_eq!(low, 1);
}
