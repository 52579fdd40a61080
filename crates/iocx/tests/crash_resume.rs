//! An import killed with SIGKILL at any point leaves a consistent store, and running the same
//! import again ends in exactly the state of an uninterrupted run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;

fn feed(lines: usize) -> String {
    let mut s = String::with_capacity(lines * 40);
    for i in 0..lines {
        match i % 5 {
            0 => s.push_str(&format!("host{i}.evil.example\n")),
            1 => s.push_str(&format!(
                "10.{}.{}.{}\n",
                (i >> 16) & 255,
                (i >> 8) & 255,
                i & 255
            )),
            2 => s.push_str(&format!("{:064x}\n", i as u128 * 0x9E37_79B9_7F4A_7C15)),
            3 => s.push_str(&format!("http://site{i}.example/p/{i}\n")),
            _ => s.push_str(if i % 50 == 4 {
                "not-an-indicator\n"
            } else {
                "host0.evil.example\n"
            }),
        }
    }
    s
}

#[test]
fn killed_imports_resume_to_exactly_the_uninterrupted_state() {
    let dir = tempdir();
    let path = write(dir.path(), "feed.txt", &feed(120_000));
    let path = path.to_str().unwrap();
    let import = [
        "import",
        path,
        "--source",
        "feed",
        "--batch",
        "2000",
        "--seen-at",
        "2026-06-01T00:00:00Z",
    ];

    for t in stores() {
        let reference = TestStore::sqlite();
        ok(&reference.url, &import);
        let expected = export_sorted(&reference.url);
        assert!(expected.len() > 90_000);

        let mut kills = 0;
        let mut delay_ms = 5u64;
        loop {
            let mut child = iocx()
                .arg("--database")
                .arg(&t.url)
                .args(import)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let started = Instant::now();
            let finished = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(status.success(), "import failed after {kills} kills");
                    break true;
                }
                if started.elapsed() >= Duration::from_millis(delay_ms) {
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    break false;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            if finished {
                break;
            }
            kills += 1;
            // Spread the kills: early (start-up, migrations), then mid-batch at growing offsets.
            delay_ms = delay_ms * 3 / 2 + 20;
            assert!(kills < 60, "the import never finished");
        }
        assert!(
            kills >= 2,
            "the test must actually interrupt the import (killed {kills} times)"
        );
        let got = export_sorted(&t.url);
        assert_eq!(got.len(), expected.len(), "{}", t.url);
        assert!(
            got == expected,
            "the resumed store differs from an uninterrupted import ({})",
            t.url
        );
        let stats: serde_json::Value =
            serde_json::from_str(&ok(&t.url, &["--json", "stats"])).unwrap();
        assert_eq!(stats["observations"].as_u64(), Some(expected.len() as u64));
    }
}
