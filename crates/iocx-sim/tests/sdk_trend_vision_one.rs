//! Trend's official Python SDK, pytmv1, against the Trend Vision One emulator.
//!
//! Runs `tests/sdk/trend_vision_one/check_pytmv1.py` with the interpreter named by
//! `IOCX_TEST_PYTHON` (a venv with `tests/sdk/trend_vision_one/requirements.txt` installed):
//!
//! ```text
//! python3 -m venv /root/.cache/iocx-venv
//! /root/.cache/iocx-venv/bin/pip install -r crates/iocx-sim/tests/sdk/trend_vision_one/requirements.txt
//! IOCX_TEST_PYTHON=/root/.cache/iocx-venv/bin/python cargo test -p iocx-sim --test sdk_trend_vision_one
//! ```
//!
//! Without the variable the test says so and passes; with it, any mismatch fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use iocx_sim::trend_vision_one::{self, Args};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytmv1_works_unchanged_against_the_emulator() {
    let Some(python) = std::env::var_os("IOCX_TEST_PYTHON") else {
        // Written straight to stderr so that it shows even though the test passes (libtest
        // captures only the print macros).
        let _ = writeln!(
            std::io::stderr(),
            "SDK check not run: IOCX_TEST_PYTHON is not set (point it at a Python with \
             crates/iocx-sim/tests/sdk/trend_vision_one/requirements.txt installed)"
        );
        return;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk/trend_vision_one/check_pytmv1.py");
    let mut args = Args::new("sdk-check-token");
    // Enough for several pages at pytmv1's default page size (100) on both lists.
    args.objects = 600;
    args.exceptions = 150;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (handle, emulator) = trend_vision_one::start(listener, &args).await.unwrap();

    let mut command = tokio::process::Command::new(&python);
    command
        .arg(&script)
        .arg(&handle.base_url)
        .arg("sdk-check-token")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("the pytmv1 check took more than 5 minutes")
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", PathBuf::from(&python).display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the pytmv1 check failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("pytmv1 check passed"), "{stdout}");
    // The SDK really talked to this emulator: many pages, adds and deletes.
    let log = emulator.log.snapshot();
    let posts = log.iter().filter(|r| r.method == "POST").count();
    let pages = log.iter().filter(|r| r.path.contains("skipToken=")).count();
    assert!(posts >= 6, "{posts} POSTs logged");
    assert!(pages >= 6, "{pages} next-page requests logged");
    handle.stop().await;
}
