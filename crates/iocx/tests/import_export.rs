//! `iocx import`, `export`, `search` and `stats` end to end, on every backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

const MESSY: &str = "# A messy real-world-style feed\n\
hxxps://Evil-Login[.]example[.]com:443/Path/To?Q=1#frag\n\
EVIL-LOGIN.EXAMPLE.COM.\n\
bücher.example\n\
192.0.2.44\n\
 \"198.51.100.7\" \n\
::ffff:203.0.113.9\n\
10.1.2.3/8\n\
D41D8CD98F00B204E9800998ECF8427E\n\
da39a3ee5e6b4b0d3255bfef95601890afd80709\n\
phish[at]Evil-Login[.]example\n\
evil-login.example.com\n\
garbage line here\n\
999.1.1.1\n\
com\n\
http://\n";

#[test]
fn messy_feed_is_canonicalised_and_bad_lines_are_reported() {
    for t in stores() {
        let dir = tempdir();
        let feed = write(dir.path(), "messy.txt", MESSY);
        let rejects = dir.path().join("rejects.txt");
        let out = ok(
            &t.url,
            &[
                "--json",
                "import",
                feed.to_str().unwrap(),
                "--source",
                "messy",
                "--tag",
                "demo",
                "--severity",
                "high",
                "--rejects",
                rejects.to_str().unwrap(),
            ],
        );
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        let f = &report["files"][0];
        assert_eq!(f["new"], 10, "{out}");
        assert_eq!(f["unchanged"], 1, "{out}");
        assert_eq!(f["rejected"]["bad_ipv4"], 1, "{out}");
        assert_eq!(f["rejected"]["public_suffix"], 1, "{out}");
        let rejected = std::fs::read_to_string(&rejects).unwrap();
        assert_eq!(rejected.lines().count(), 4, "{rejected}");
        assert!(rejected.contains("line 14: bad_ipv4"), "{rejected}");
        assert!(rejected.contains("line 13: unrecognised"), "{rejected}");

        let rows = export_sorted(&t.url);
        let values: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{}:{}",
                    r["kind"].as_str().unwrap(),
                    r["value"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            values,
            [
                "cidr:10.0.0.0/8",
                "domain:evil-login.example.com",
                "domain:xn--bcher-kva.example",
                "email:phish@evil-login.example",
                "ipv4:192.0.2.44",
                "ipv4:198.51.100.7",
                "ipv4:203.0.113.9",
                "md5:d41d8cd98f00b204e9800998ecf8427e",
                "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
                "url:https://evil-login.example.com/Path/To?Q=1",
            ]
        );
        let domain = rows
            .iter()
            .find(|r| r["value"] == "evil-login.example.com")
            .unwrap();
        assert_eq!(domain["hits"], 2);
        assert_eq!(domain["severity"], "high");
        assert_eq!(domain["tags"], serde_json::json!(["demo"]));
        assert_eq!(domain["sources"], serde_json::json!(["messy"]));

        // Defanged input finds the canonical indicator.
        let found = ok(
            &t.url,
            &["search", "hxxps://evil-login[.]example[.]com/Path/To?Q=1"],
        );
        assert!(
            found.contains("url https://evil-login.example.com/Path/To?Q=1"),
            "{found}"
        );
        assert!(found.contains("messy: severity high"), "{found}");
        let missing = run(&t.url, &["search", "nothing-here.example"]);
        assert_eq!(missing.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&missing.stdout).contains("not in the store"));

        let stats: serde_json::Value =
            serde_json::from_str(&ok(&t.url, &["--json", "stats"])).unwrap();
        assert_eq!(stats["indicators"], 10);
        assert_eq!(stats["by_source"]["messy"], 10);
        assert_eq!(stats["by_kind"]["ipv4"], 3);
    }
}

#[test]
fn every_export_format_imports_back_into_an_equal_store() {
    for t in stores() {
        let dir = tempdir();
        let feed = write(
            dir.path(),
            "feed.csv",
            "value,type,severity,tags,expires,comment\nevil.example,domain,critical,\"a;b\",2030-01-01,kit\n192.0.2.1,ip,low,,,\nhttp://x.example/p?q=1,url,medium,c,,\"with, comma\"\n",
        );
        ok(
            &t.url,
            &["import", feed.to_str().unwrap(), "--source", "csv"],
        );
        let original = export_sorted(&t.url);
        assert_eq!(original.len(), 3);
        for format in ["csv", "json", "stix", "txt"] {
            let exported = ok(&t.url, &["export", "--format", format]);
            let file = write(dir.path(), &format!("export.{format}"), &exported);
            let copy = TestStore::sqlite();
            ok(
                &copy.url,
                &["import", file.to_str().unwrap(), "--source", "csv"],
            );
            let back = export_sorted(&copy.url);
            assert_eq!(back.len(), 3, "{format}");
            for (a, b) in original.iter().zip(&back) {
                assert_eq!(a["value"], b["value"], "{format}");
                if format != "txt" {
                    assert_eq!(a["tags"], b["tags"], "{format}");
                    assert_eq!(a["expires"], b["expires"], "{format}");
                }
                if format == "csv" || format == "json" {
                    assert_eq!(a["severity"], b["severity"], "{format}");
                    assert_eq!(a["comment"], b["comment"], "{format}");
                }
            }
        }
        let only_urls = ok(&t.url, &["export", "--kind", "url"]);
        assert_eq!(only_urls.trim(), "http://x.example/p?q=1");
    }
}

#[test]
fn stdin_gzip_and_unreadable_inputs() {
    let t = TestStore::sqlite();
    let dir = tempdir();
    // stdin
    let mut child = iocx()
        .args([
            "--database",
            &t.url,
            "--json",
            "import",
            "-",
            "--source",
            "pipe",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a.example\nb.example\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["files"][0]["new"], 2);
    // gzip
    let gz = dir.path().join("feed.txt.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(b"c.example\n192.0.2.200\n").unwrap();
    enc.finish().unwrap();
    let out: serde_json::Value = serde_json::from_str(&ok(
        &t.url,
        &["--json", "import", gz.to_str().unwrap(), "--source", "gz"],
    ))
    .unwrap();
    assert_eq!(out["files"][0]["new"], 2);
    // Nothing readable: exit code 2, the reason named.
    let out = run(
        &t.url,
        &["import", "/nonexistent/feed.txt", "--source", "x"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/feed.txt"),
        "{out:?}"
    );
    // One readable file among unreadable ones: success, with the bad one reported.
    let good = write(dir.path(), "good.txt", "d.example\n");
    let out = run(
        &t.url,
        &[
            "import",
            "/nonexistent/feed.txt",
            good.to_str().unwrap(),
            "--source",
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    // A broken JSON array keeps what came before the break and says where it broke.
    let broken = write(
        dir.path(),
        "broken.json",
        "[\"e.example\", \"f.example\", {\"value\": ",
    );
    let out: serde_json::Value = serde_json::from_str(&ok(
        &t.url,
        &[
            "--json",
            "import",
            broken.to_str().unwrap(),
            "--source",
            "x",
        ],
    ))
    .unwrap();
    assert_eq!(out["files"][0]["new"], 2);
    assert!(
        out["files"][0]["error"]
            .as_str()
            .unwrap()
            .contains("item 3"),
        "{out}"
    );
    // Wrong option values are named.
    let out = run(
        &t.url,
        &[
            "import",
            good.to_str().unwrap(),
            "--source",
            "x",
            "--severity",
            "urgent",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("urgent"));
}
