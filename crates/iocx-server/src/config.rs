//! The service's configuration: a TOML file, then environment overrides.
//!
//! Every key can be set from the environment as `IOCX__SECTION__KEY` (for example
//! `IOCX__SERVER__LISTEN=0.0.0.0:8443`); `IOCX__SECTION__KEY_FILE` reads the value from a file,
//! for secrets handed over by an orchestrator. Values from the environment are read as TOML
//! (numbers, booleans, `["lists"]`) and otherwise as text. Unknown keys are errors that name
//! the key and where it came from, so a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use iocx_model::Kind;
use serde::Deserialize;

/// The whole configuration of `iocx serve`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Listening and HTTP limits.
    pub server: ServerSection,
    /// Where the data lives (the command line's `--data`/`--database` win).
    pub database: DatabaseSection,
    /// The in-process scheduler.
    pub scheduler: SchedulerSection,
    /// Logging.
    pub log: LogSection,
    /// Logins and sessions.
    pub auth: AuthSection,
    /// The TAXII 2.1 server.
    pub taxii: TaxiiSection,
    /// EDL lists by name, served at `/edl/NAME.txt`.
    pub edl: BTreeMap<String, EdlSection>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// The address to listen on.
    pub listen: String,
    /// A PEM certificate chain: with `tls_key`, the server speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Seconds a request may take before it is answered 503.
    pub request_timeout_secs: u64,
    /// Seconds running jobs get to finish on shutdown before they are abandoned (they resume
    /// from their last checkpoint on the next start).
    pub shutdown_grace_secs: u64,
}

impl Default for ServerSection {
    fn default() -> ServerSection {
        ServerSection {
            listen: "127.0.0.1:8080".into(),
            tls_cert: None,
            tls_key: None,
            max_body_bytes: 16 * 1024 * 1024,
            request_timeout_secs: 120,
            shutdown_grace_secs: 20,
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSection {
    /// A `postgres://` URL or a SQLite path.
    pub url: Option<String>,
    /// The data directory.
    pub data: Option<PathBuf>,
}

/// `[scheduler]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerSection {
    /// Whether this node runs scheduled pulls and shares (a node may serve the API only).
    pub enabled: bool,
    /// The most jobs this node runs at once.
    pub max_jobs: usize,
}

impl Default for SchedulerSection {
    fn default() -> SchedulerSection {
        SchedulerSection {
            enabled: true,
            max_jobs: 4,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A level (`info`) or a tracing filter.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> LogSection {
        LogSection {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// Hours a browser session lasts.
    pub session_hours: i64,
    /// Failed logins allowed per client address and per user name in a minute.
    pub login_attempts_per_minute: u32,
    /// Mark cookies `Secure` (on by default with TLS; set it behind a TLS-terminating proxy).
    pub secure_cookies: Option<bool>,
}

impl Default for AuthSection {
    fn default() -> AuthSection {
        AuthSection {
            session_hours: 12,
            login_attempts_per_minute: 10,
            secure_cookies: None,
        }
    }
}

/// `[taxii]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaxiiSection {
    /// Whether `/taxii2/` is served.
    pub enabled: bool,
    /// The discovery title.
    pub title: String,
    /// Rules published as collections; empty publishes every rule.
    pub collections: Vec<String>,
    /// The most objects in one page.
    pub max_page: usize,
}

impl Default for TaxiiSection {
    fn default() -> TaxiiSection {
        TaxiiSection {
            enabled: true,
            title: "iocx".into(),
            collections: Vec::new(),
            max_page: 1000,
        }
    }
}

/// `[edl.NAME]`: one plain-text list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdlSection {
    /// The rule that selects the list's indicators (active ones only).
    pub rule: String,
    /// The kinds it carries (`url`, `domain`, `ipv4`, …); empty carries every kind.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// The most entries (the firewall's limit); the highest severity, then most hits, win.
    #[serde(default)]
    pub capacity: usize,
    /// Strip `http://` and `https://` from URLs (PAN-OS).
    #[serde(default)]
    pub strip_url_scheme: bool,
}

impl EdlSection {
    /// The kinds, parsed.
    ///
    /// # Errors
    /// Naming the unknown kind.
    pub fn parsed_kinds(&self) -> Result<Vec<Kind>, String> {
        self.kinds
            .iter()
            .map(|k| k.parse::<Kind>().map_err(|_| format!("unknown kind {k:?}")))
            .collect()
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ConfigError {
    /// The file or variable.
    pub origin: String,
    /// What is wrong.
    pub message: String,
}

/// The environment variables' prefix.
pub const ENV_PREFIX: &str = "IOCX__";

impl ServeConfig {
    /// Reads `file` (when given), applies the process environment's overrides and checks the
    /// result.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file or variable and the key.
    pub fn load(file: Option<&Path>) -> Result<ServeConfig, ConfigError> {
        ServeConfig::load_with(file, std::env::vars())
    }

    /// As [`ServeConfig::load`], with the environment given (for tests).
    ///
    /// # Errors
    /// As [`ServeConfig::load`].
    pub fn load_with(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ServeConfig, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let origin = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                    origin: origin.clone(),
                    message: format!("cannot read it: {e}"),
                })?;
                text.parse::<toml::Table>().map_err(|e| ConfigError {
                    origin,
                    message: e.to_string(),
                })?
            }
            None => toml::Table::new(),
        };
        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        overrides.sort();
        for (var, value) in overrides {
            apply_env(&mut table, &var, &value)?;
        }
        let origin = file.map_or_else(
            || "the environment".to_string(),
            |p| format!("{} and the environment", p.display()),
        );
        let config: ServeConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| ConfigError {
                origin: origin.clone(),
                message: format!("{}: {}", e.path(), e.inner().message()),
            })?;
        config
            .check()
            .map_err(|message| ConfigError { origin, message })?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "server.listen = {:?} is not an address like 127.0.0.1:8080",
                self.server.listen
            ));
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return Err("server.tls_cert and server.tls_key go together".into());
        }
        if !(1024..=1024 * 1024 * 1024).contains(&self.server.max_body_bytes) {
            return Err("server.max_body_bytes must be between 1 KiB and 1 GiB".into());
        }
        if !(1..=24 * 30).contains(&self.auth.session_hours) {
            return Err("auth.session_hours must be between 1 and 720".into());
        }
        if self.auth.login_attempts_per_minute == 0 {
            return Err("auth.login_attempts_per_minute must be at least 1".into());
        }
        if !(1..=10_000).contains(&self.taxii.max_page) {
            return Err("taxii.max_page must be between 1 and 10000".into());
        }
        if !(1..=64).contains(&self.scheduler.max_jobs) {
            return Err("scheduler.max_jobs must be between 1 and 64".into());
        }
        for (name, list) in &self.edl {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "edl.{name}: list names use letters, digits, '-' and '_'"
                ));
            }
            list.parsed_kinds()
                .map_err(|e| format!("edl.{name}.kinds: {e}"))?;
        }
        Ok(())
    }
}

/// Sets `IOCX__A__B[_FILE]=value` at `a.b` of `table`.
fn apply_env(table: &mut toml::Table, var: &str, value: &str) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError {
        origin: format!("environment variable {var}"),
        message,
    };
    let path = &var[ENV_PREFIX.len()..];
    let (path, value) = match path.strip_suffix("_FILE") {
        Some(p) => {
            let text = std::fs::read_to_string(value)
                .map_err(|e| err(format!("cannot read {value}: {e}")))?;
            (p, text.trim_end_matches(['\n', '\r']).to_string())
        }
        None => (path, value.to_string()),
    };
    let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
    if keys.iter().any(String::is_empty) {
        return Err(err("write IOCX__SECTION__KEY".into()));
    }
    // TOML first (numbers, booleans, arrays), text otherwise.
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or(toml::Value::String(value));
    let mut at = table;
    for key in &keys[..keys.len() - 1] {
        let entry = at
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = entry
            .as_table_mut()
            .ok_or_else(|| err(format!("{key} is not a section")))?;
    }
    at.insert(keys[keys.len() - 1].clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("iocx.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:9000\"\n[edl.pan]\nrule = \"web\"\nkinds = [\"url\"]\ncapacity = 150000\nstrip_url_scheme = true\n",
        )
        .unwrap();
        let secret = dir.path().join("db-url");
        std::fs::write(&secret, "postgres://u:p@db/iocx\n").unwrap();
        let c = ServeConfig::load_with(
            Some(&file),
            env(&[
                ("IOCX__SCHEDULER__MAX_JOBS", "8"),
                ("IOCX__SERVER__LISTEN", "127.0.0.1:9100"),
                ("IOCX__DATABASE__URL_FILE", secret.to_str().unwrap()),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9100");
        assert_eq!(c.scheduler.max_jobs, 8);
        assert_eq!(c.database.url.as_deref(), Some("postgres://u:p@db/iocx"));
        assert_eq!(c.edl["pan"].capacity, 150_000);
        assert!(c.taxii.enabled, "defaults stay");
    }

    #[test]
    fn mistakes_name_the_key_and_origin() {
        let e = ServeConfig::load_with(None, env(&[("IOCX__SERVER__LISTN", "x")])).unwrap_err();
        assert!(e.to_string().contains("listn"), "{e}");
        let e = ServeConfig::load_with(None, env(&[("IOCX__SCHEDULER__MAX_JOBS", "many")]))
            .unwrap_err();
        assert!(
            e.to_string().contains("max_jobs") || e.to_string().contains("integer"),
            "{e}"
        );
        let e =
            ServeConfig::load_with(None, env(&[("IOCX__SERVER__LISTEN", "nowhere")])).unwrap_err();
        assert!(e.to_string().contains("server.listen"), "{e}");
        let e = ServeConfig::load_with(
            None,
            env(&[
                ("IOCX__EDL__X__RULE", "r"),
                ("IOCX__EDL__X__KINDS", "[\"urls\"]"),
            ]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("edl.x.kinds"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "[server\n").unwrap();
        let e = ServeConfig::load_with(Some(&file), env(&[])).unwrap_err();
        assert!(e.to_string().contains("bad.toml"), "{e}");
    }
}
