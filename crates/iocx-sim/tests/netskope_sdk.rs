//! Netskope's Python SDKs (`netskopesdk`, the dataexport iterator client, and `netskope-py-sdk`)
//! against the Netskope emulator served over HTTPS.
//!
//! Runs `tests/sdk/netskope/check_netskope_sdks.py` with the interpreter named by
//! `IOCX_TEST_PYTHON` (a venv with `tests/sdk/netskope/requirements.txt` installed):
//!
//! ```text
//! python3 -m venv /root/.cache/iocx-venv
//! /root/.cache/iocx-venv/bin/pip install -r crates/iocx-sim/tests/sdk/netskope/requirements.txt
//! IOCX_TEST_PYTHON=/root/.cache/iocx-venv/bin/python cargo test -p iocx-sim --test netskope_sdk
//! ```
//!
//! Without the variable the test says so and passes; with it, any mismatch fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use iocx_sim::netskope::{self, Args};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netskope_sdks_work_against_the_emulator() {
    let Some(python) = std::env::var_os("IOCX_TEST_PYTHON") else {
        // Written straight to stderr so that it shows even though the test passes (libtest
        // captures only the print macros).
        let _ = writeln!(
            std::io::stderr(),
            "SDK check not run: IOCX_TEST_PYTHON is not set (point it at a Python with \
             crates/iocx-sim/tests/sdk/netskope/requirements.txt installed)"
        );
        return;
    };
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/netskope/check_netskope_sdks.py");
    let token = "sdk-check-token";
    let args = Args {
        token: token.to_string(),
        alerts: 300,
        page_size: 25,
        tls: true,
        ..Args::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (handle, emulator) = netskope::start(listener, &args).await.unwrap();
    let ca = handle
        .tls
        .as_ref()
        .expect("served over TLS")
        .cert_pem
        .clone();
    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    ca_file.write_all(ca.as_bytes()).unwrap();

    let mut command = tokio::process::Command::new(&python);
    command
        .arg(&script)
        .arg(&handle.base_url)
        .arg(token)
        .arg(ca_file.path())
        .env("REQUESTS_CA_BUNDLE", ca_file.path())
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("the Netskope SDK check took more than 5 minutes")
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", PathBuf::from(&python).display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the Netskope SDK check failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("netskope SDK check passed"), "{stdout}");
    // The SDKs really talked to this emulator: iterator pages, list pages and retried 429s.
    let log = emulator.log.snapshot();
    let pages = log
        .iter()
        .filter(|r| r.path.contains("/dataexport/alerts/malware"))
        .count();
    let injected = log.iter().filter(|r| r.injected).count();
    assert!(pages >= 8, "{pages} iterator calls logged");
    assert!(injected >= 1, "{injected} injected 429s logged");
    handle.stop().await;
}
