//! What every command shares: global options, opening the store, output.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context as _;
use iocx_store::Store;

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// The data directory: the SQLite database and the key file live here.
    #[arg(
        long,
        global = true,
        env = "IOCX_DATA",
        default_value = "./iocx-data",
        value_name = "DIR"
    )]
    pub data: PathBuf,
    /// The database: a postgres:// URL, or a SQLite file (default: iocx.db in the data directory).
    #[arg(
        long,
        global = true,
        env = "IOCX_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log level filter (error, warn, info, debug, trace, or a tracing filter).
    #[arg(
        long,
        global = true,
        env = "IOCX_LOG",
        default_value = "warn",
        value_name = "FILTER"
    )]
    pub log: String,
}

impl Global {
    /// The database the options name.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => self.data.join("iocx.db").display().to_string(),
        }
    }

    /// Opens the store and the secrets vault.
    pub fn engine(&self) -> anyhow::Result<iocx_engine::Engine> {
        let store = self.open_store()?;
        let vault = iocx_engine::Vault::open(&self.data).context("opening the secrets vault")?;
        Ok(iocx_engine::Engine::new(store, vault))
    }

    /// Opens the store.
    pub fn open_store(&self) -> anyhow::Result<Store> {
        let url = self.database_url();
        if self.database.is_none() {
            std::fs::create_dir_all(&self.data)
                .with_context(|| format!("creating the data directory {}", self.data.display()))?;
        }
        Store::open(&url).context("opening the store")
    }
}

/// Sets up logging to stderr.
pub fn init_logging(global: &Global) {
    let filter = tracing_subscriber::EnvFilter::try_new(&global.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Whether progress bars should be drawn (stderr is a terminal and output is not JSON).
pub fn show_progress(global: &Global) -> bool {
    !global.json && std::io::stderr().is_terminal()
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("encoding JSON")?
    );
    Ok(())
}

/// The peak resident set size of this process in bytes, where the platform reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A number with thousands separators.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Cancels `cancel` on Ctrl-C or SIGTERM.
pub fn shutdown_signal(cancel: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            if let Ok(mut term) = signal(SignalKind::terminate()) {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            } else {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        cancel.cancel();
    });
}
