//! Carbon Black's official Python SDK, cbc_sdk, against the Carbon Black Cloud emulator.
//!
//! Runs `tests/sdk/carbon_black/check_cbc_sdk.py` with the interpreter named by
//! `IOCX_TEST_PYTHON` (a venv with `tests/sdk/carbon_black/requirements.txt` installed):
//!
//! ```text
//! python3 -m venv /root/.cache/iocx-venv
//! /root/.cache/iocx-venv/bin/pip install -r crates/iocx-sim/tests/sdk/carbon_black/requirements.txt
//! IOCX_TEST_PYTHON=/root/.cache/iocx-venv/bin/python cargo test -p iocx-sim --test sdk_carbon_black
//! ```
//!
//! Without the variable the test says so and passes; with it, any mismatch fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use iocx_sim::carbon_black::{self, Args};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbc_sdk_works_unchanged_against_the_emulator() {
    let Some(python) = std::env::var_os("IOCX_TEST_PYTHON") else {
        // Straight to stderr so that it shows although the test passes.
        let _ = writeln!(
            std::io::stderr(),
            "SDK check not run: IOCX_TEST_PYTHON is not set (point it at a Python with \
             crates/iocx-sim/tests/sdk/carbon_black/requirements.txt installed)"
        );
        return;
    };
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/carbon_black/check_cbc_sdk.py");
    let args = Args {
        // Several pages at the SDK's 100 rows a page; 350 also avoids the SDK's own stop rule
        // (it stops once its row counter reaches num_found, which drops the last alert when
        // num_found - 1 is a multiple of the page size).
        alerts: 350,
        feeds: 2,
        ..Args::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (handle, emulator) = carbon_black::start(listener, &args).await.unwrap();
    assert!(handle.base_url.starts_with("https://"));

    let mut command = tokio::process::Command::new(&python);
    command
        .arg(&script)
        .arg(&handle.base_url)
        .arg(args.auth_token())
        .arg(&args.org_key)
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("the cbc_sdk check took more than 5 minutes")
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", PathBuf::from(&python).display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the cbc_sdk check failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("cbc_sdk check passed"), "{stdout}");
    // The SDK really talked to this emulator: feed writes and several alert pages.
    let log = emulator.log.snapshot();
    let searches = log
        .iter()
        .filter(|r| r.path.ends_with("/alerts/_search"))
        .count();
    let report_posts = log
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/reports"))
        .count();
    assert!(searches >= 4, "{searches} alert searches logged");
    assert!(
        report_posts >= 2,
        "{report_posts} report replacements logged"
    );
    handle.stop().await;
}
