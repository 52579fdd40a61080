use std::ops::ControlFlow;

use super::*;
use crate::{Attributes, Kind, Severity, Timestamp};

fn read_all(text: &str, options: &FeedOptions) -> (Format, Vec<(Position, Record)>, Vec<Reject>) {
    let mut records = Vec::new();
    let mut rejects = Vec::new();
    let format = read_feed(text.as_bytes(), options, &mut |item| {
        match item {
            FeedItem::Record(p, r) => records.push((p, r)),
            FeedItem::Reject(r) => rejects.push(r),
        }
        ControlFlow::Continue(())
    })
    .expect("readable feed");
    (format, records, rejects)
}

fn values(records: &[(Position, Record)]) -> Vec<String> {
    records
        .iter()
        .map(|(_, r)| r.indicator.to_string())
        .collect()
}

#[test]
fn txt_with_comments_defanged_values_and_garbage() {
    let feed = "# a feed\n\nhxxp://evil[.]example/path # the landing page\nEVIL.example.\n  192.0.2.1  \n;comment\nnot an ioc at all\n// another\nhttp://x.example/#frag\n";
    let (format, records, rejects) = read_all(feed, &FeedOptions::default());
    assert_eq!(format, Format::Txt);
    assert_eq!(
        values(&records),
        [
            "url:http://evil.example/path",
            "domain:evil.example",
            "ipv4:192.0.2.1",
            "url:http://x.example/"
        ]
    );
    assert_eq!(records[0].0, Position::Line(3));
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].position, Position::Line(7));
}

#[test]
fn csv_header_maps_fields() {
    let feed = "indicator,type,severity,tags,first_seen,comment\n\
                evil.example,domain,high,\"a;b\",2026-01-01,phish\n\
                1.2.3.4,ip,urgent,,,\n\
                ,,,,,\n\
                d41d8cd98f00b204e9800998ecf8427e,md5,low,x,notadate,\n";
    let (format, records, rejects) = read_all(feed, &FeedOptions::default());
    assert_eq!(format, Format::Csv);
    assert_eq!(values(&records), ["domain:evil.example"]);
    let r = &records[0].1;
    assert_eq!(r.attributes.severity, Severity::High);
    assert_eq!(r.attributes.tags.as_slice(), ["a", "b"]);
    assert_eq!(r.first_seen, Some(Timestamp(1_767_225_600)));
    assert_eq!(r.attributes.comment.as_deref(), Some("phish"));
    let reasons: Vec<&str> = rejects.iter().map(|r| r.reason).collect();
    assert_eq!(reasons, ["bad_severity", "bad_time"]);
    assert_eq!(rejects[0].position, Position::Line(3));
}

#[test]
fn csv_commented_header_like_abuse_ch() {
    let feed = "################\n# URLhaus\n################\n# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
                \"1\",\"2026-01-02 03:04:05\",\"http://evil.example/a.exe\",\"online\",\"\",\"malware_download\",\"exe,Mozi\",\"https://urlhaus.example/1/\",\"r\"\n";
    let options = FeedOptions {
        format: Some(Format::Csv),
        ..FeedOptions::default()
    };
    let (_, records, rejects) = read_all(feed, &options);
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(values(&records), ["url:http://evil.example/a.exe"]);
    let r = &records[0].1;
    assert_eq!(r.attributes.tags.as_slice(), ["Mozi", "exe"]);
    assert_eq!(
        r.attributes.link.as_deref(),
        Some("https://urlhaus.example/1/")
    );
    assert_eq!(r.attributes.comment.as_deref(), Some("malware_download"));
}

#[test]
fn csv_chosen_column_without_header() {
    let feed = "x,evil.example\ny,192.0.2.9\n";
    let options = FeedOptions {
        format: Some(Format::Csv),
        column: Some(Column::Number(2)),
        ..FeedOptions::default()
    };
    let (_, records, _) = read_all(feed, &options);
    assert_eq!(values(&records), ["domain:evil.example", "ipv4:192.0.2.9"]);
}

#[test]
fn json_array_lines_and_strings() {
    let feed = r#"[{"value":"evil.example","severity":"critical","tags":["x","y"]}, "192.0.2.5", 42, {"ioc":"nope nope"}]"#;
    let (format, records, rejects) = read_all(feed, &FeedOptions::default());
    assert_eq!(format, Format::Json);
    assert_eq!(values(&records), ["domain:evil.example", "ipv4:192.0.2.5"]);
    assert_eq!(records[0].1.attributes.tags.as_slice(), ["x", "y"]);
    assert_eq!(
        rejects.iter().map(|r| r.position).collect::<Vec<_>>(),
        [Position::Item(3), Position::Item(4)]
    );

    let lines = "{\"value\":\"a.example\"}\n{broken\n{\"indicator\":\"b.example\",\"expires\":1767225600}\n";
    let (format, records, rejects) = read_all(lines, &FeedOptions::default());
    assert_eq!(format, Format::Json);
    assert_eq!(values(&records), ["domain:a.example", "domain:b.example"]);
    assert_eq!(
        records[1].1.attributes.expires,
        Some(Timestamp(1_767_225_600))
    );
    assert_eq!(rejects[0].position, Position::Line(2));
}

#[test]
fn broken_json_array_is_a_syntax_error_after_delivering_what_came_before() {
    let mut seen = 0;
    let err = read_feed(
        r#"["a.example", "b.example", {"#.as_bytes(),
        &FeedOptions::default(),
        &mut |_| {
            seen += 1;
            ControlFlow::Continue(())
        },
    )
    .unwrap_err();
    assert_eq!(seen, 2);
    assert!(
        matches!(
            err,
            FeedError::Syntax {
                position: Position::Item(3),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn stix_bundle() {
    let feed = r#"{"type":"bundle","id":"bundle--1","objects":[
      {"type":"identity","id":"identity--1","name":"x"},
      {"type":"indicator","id":"indicator--1","pattern":"[domain-name:value = 'evil.example']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","valid_until":"2026-02-01T00:00:00Z","labels":["apt"],"description":"d"},
      {"type":"indicator","id":"indicator--2","pattern":"[file:hashes.'SHA-256' = 'E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855']"},
      {"type":"indicator","id":"indicator--3","pattern":"[ipv4-addr:value = '1.1.1.1' AND domain-name:value = 'x.example']"},
      {"type":"indicator","id":"indicator--4","pattern":"[url:value = 'http://a.example/']","revoked":true},
      {"type":"ipv4-addr","id":"ipv4-addr--1","value":"198.51.100.0/24"}
    ]}"#;
    let (format, records, rejects) = read_all(feed, &FeedOptions::default());
    assert_eq!(format, Format::Stix);
    assert_eq!(
        values(&records),
        [
            "domain:evil.example",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "cidr:198.51.100.0/24"
        ]
    );
    let r = &records[0].1;
    assert_eq!(r.attributes.expires, Some(Timestamp(1_769_904_000)));
    assert_eq!(r.attributes.tags.as_slice(), ["apt"]);
    assert_eq!(records[0].0, Position::Item(2));
    assert_eq!(
        rejects.iter().map(|r| r.reason).collect::<Vec<_>>(),
        ["unsupported_pattern", "revoked"]
    );
}

#[test]
fn defaults_apply_and_records_override() {
    let options = FeedOptions {
        defaults: Attributes {
            severity: Severity::Medium,
            tags: crate::TagSet::from_tags(["feed"]),
            ..Default::default()
        },
        ..FeedOptions::default()
    };
    let (_, records, _) = read_all(
        "value,severity,tags\na.example,,\nb.example,high,x\n",
        &options,
    );
    assert_eq!(records[0].1.attributes.severity, Severity::Medium);
    assert_eq!(records[1].1.attributes.severity, Severity::High);
    assert_eq!(records[1].1.attributes.tags.as_slice(), ["feed", "x"]);
}

#[test]
fn declared_kind_rejects_other_kinds() {
    let options = FeedOptions {
        kind: Some(Kind::Sha256),
        ..FeedOptions::default()
    };
    let (_, records, rejects) = read_all("evil.example\n", &options);
    assert!(records.is_empty());
    assert_eq!(rejects.len(), 1);
}

#[test]
fn export_formats_read_back() {
    let ind = parse("http://evil.example/a,b'c\\d", None, &Default::default())
        .unwrap()
        .first()
        .clone();
    let tags = vec!["x".to_string(), "y".to_string()];
    let row = ExportRow {
        indicator: &ind,
        severity: Severity::High,
        reputation: 3,
        tags: &tags,
        first_seen: Timestamp(1_767_225_600),
        last_seen: Timestamp(1_767_225_700),
        modified: Timestamp(1_767_225_700),
        expires: Some(Timestamp(1_769_904_000)),
        hits: 4,
        sources: vec!["a", "b"],
        active: true,
        safe: false,
        comment: Some("c, with comma"),
    };
    for (format, input) in [
        (ExportFormat::Csv, Format::Csv),
        (ExportFormat::Json, Format::Json),
        (ExportFormat::Stix, Format::Stix),
        (ExportFormat::Txt, Format::Txt),
    ] {
        let mut out = Vec::new();
        let mut w = ExportWriter::new(&mut out, format).unwrap();
        w.row(&row).unwrap();
        w.row(&row).unwrap();
        assert_eq!(w.finish().unwrap(), 2);
        let text = String::from_utf8(out).unwrap();
        let (detected, records, rejects) = read_all(&text, &FeedOptions::default());
        assert_eq!(detected, input, "{format:?}: {text}");
        assert!(rejects.is_empty(), "{format:?}: {rejects:?}");
        assert_eq!(records.len(), 2, "{format:?}");
        assert_eq!(records[0].1.indicator, ind, "{format:?}");
        if format != ExportFormat::Txt {
            assert_eq!(
                records[0].1.attributes.tags.as_slice(),
                ["x", "y"],
                "{format:?}"
            );
            assert_eq!(records[0].1.attributes.expires, row.expires, "{format:?}");
        }
        if matches!(format, ExportFormat::Csv | ExportFormat::Json) {
            assert_eq!(
                records[0].1.attributes.severity,
                Severity::High,
                "{format:?}"
            );
            assert_eq!(
                records[0].1.attributes.comment.as_deref(),
                Some("c, with comma"),
                "{format:?}"
            );
        }
    }
}
