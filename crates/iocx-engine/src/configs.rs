//! Creating, editing and opening configurations: connector values validated against the spec,
//! platform settings checked, secrets sealed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use iocx_connectors::{Connector, Context, FieldError, FieldErrors, LogSink, Settings, Values};
use iocx_store::{Configuration, NewConfiguration, Platform, Store};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::EngineError;
use crate::vault::Vault;

/// The shortest sync interval a configuration may have.
pub const MIN_INTERVAL_SECS: i64 = 60;
/// Intervals below this get a warning: production pulls should not hammer an API.
pub const WARN_INTERVAL_SECS: i64 = 300;
/// Setting this variable to 1 allows intervals down to one second (for tests and demos).
pub const SHORT_INTERVALS_ENV: &str = "IOCX_ALLOW_SHORT_INTERVALS";

/// What a user asks for when adding or editing a configuration.
#[derive(Debug, Clone, Default)]
pub struct ConfigChange {
    /// Field values to set (typed JSON).
    pub set: BTreeMap<String, Value>,
    /// Fields to clear.
    pub unset: Vec<String>,
    /// Secret values to set.
    pub secrets: BTreeMap<String, String>,
    /// Enabled or disabled.
    pub enabled: Option<bool>,
    /// Seconds between pulls.
    pub interval_secs: Option<i64>,
    /// Aging criteria in days.
    pub aging_days: Option<i64>,
    /// Override reputation (`Some(None)` clears it).
    pub override_reputation: Option<Option<u8>>,
    /// Initial range in days.
    pub initial_range_days: Option<i64>,
    /// Whether it pulls.
    pub polling: Option<bool>,
    /// Whether TLS certificates are verified.
    pub verify_tls: Option<bool>,
    /// Extra CA certificates, PEM (`Some(None)` clears it).
    pub ca_bundle: Option<Option<String>>,
    /// Proxy URL (`Some(None)` clears it).
    pub proxy: Option<Option<String>>,
    /// Request timeout in seconds.
    pub timeout_secs: Option<i64>,
}

/// A saved configuration and the warnings its settings deserve.
#[derive(Debug, Clone)]
pub struct Saved {
    /// The configuration.
    pub configuration: Configuration,
    /// Advice, such as a short interval.
    pub warnings: Vec<String>,
}

/// Checks a configuration name: what URLs, job names and logs can carry.
///
/// # Errors
/// A field error naming `name`.
pub fn check_name(name: &str) -> Result<(), FieldError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "name",
            format!(
                "{name:?} is not a valid name: use 1–64 letters, digits, '-', '_' or '.', starting with a letter or digit"
            ),
        ))
    }
}

fn apply_platform(
    p: &mut Platform,
    c: &ConfigChange,
    errors: &mut Vec<FieldError>,
    warnings: &mut Vec<String>,
) {
    let short_ok = std::env::var(SHORT_INTERVALS_ENV).is_ok_and(|v| v == "1");
    if let Some(i) = c.interval_secs {
        let min = if short_ok { 1 } else { MIN_INTERVAL_SECS };
        if i < min {
            errors.push(FieldError::new(
                "interval",
                format!("{i} s is below the minimum of {min} s"),
            ));
        } else {
            p.interval_secs = i;
        }
    }
    if p.interval_secs < WARN_INTERVAL_SECS {
        warnings.push(format!(
            "a sync interval of {} s is short; production pulls should not run more often than every 5 minutes",
            p.interval_secs
        ));
    }
    let mut range = |field: &str, value: Option<i64>, lo: i64, hi: i64, slot: &mut i64| {
        if let Some(v) = value {
            if (lo..=hi).contains(&v) {
                *slot = v;
            } else {
                errors.push(FieldError::new(field, format!("{v} is outside {lo}–{hi}")));
            }
        }
    };
    range("aging_days", c.aging_days, 1, 3650, &mut p.aging_days);
    range(
        "initial_range_days",
        c.initial_range_days,
        1,
        365,
        &mut p.initial_range_days,
    );
    range("timeout", c.timeout_secs, 1, 600, &mut p.timeout_secs);
    if let Some(r) = c.override_reputation {
        match r {
            Some(v) if !(1..=10).contains(&v) => {
                errors.push(FieldError::new(
                    "override_reputation",
                    format!("{v} is outside 1–10"),
                ));
            }
            r => p.override_reputation = r,
        }
    }
    if let Some(polling) = c.polling {
        p.polling = polling;
    }
    if let Some(v) = c.verify_tls {
        p.verify_tls = v;
    }
    if let Some(proxy) = &c.proxy {
        match proxy {
            Some(url)
                if url::Url::parse(url)
                    .map(|u| !matches!(u.scheme(), "http" | "https" | "socks5"))
                    .unwrap_or(true) =>
            {
                errors.push(FieldError::new(
                    "proxy",
                    format!("{url:?} is not an http://, https:// or socks5:// URL"),
                ));
            }
            v => p.proxy = v.clone(),
        }
    }
    if let Some(ca) = &c.ca_bundle {
        match ca {
            Some(pem) if !pem.contains("-----BEGIN CERTIFICATE-----") => {
                errors.push(FieldError::new("ca_bundle", "not a PEM certificate bundle"));
            }
            v => p.ca_bundle = v.clone(),
        }
    }
    if !p.verify_tls {
        warnings.push("TLS verification is off: the connection can be intercepted".into());
    }
}

fn merged_input(
    public: &BTreeMap<String, Value>,
    secrets: &BTreeMap<String, Value>,
    c: &ConfigChange,
) -> BTreeMap<String, Value> {
    let mut input = public.clone();
    input.extend(secrets.iter().map(|(k, v)| (k.clone(), v.clone())));
    for key in &c.unset {
        input.remove(key);
    }
    input.extend(c.set.iter().map(|(k, v)| (k.clone(), v.clone())));
    input.extend(
        c.secrets
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone()))),
    );
    input
}

pub(crate) fn connector_of(name: &str) -> Result<&'static dyn Connector, EngineError> {
    iocx_connectors::connector(name).ok_or_else(|| {
        let known: Vec<&str> = iocx_connectors::registry()
            .iter()
            .map(|c| c.spec().name.as_str())
            .collect();
        EngineError::Invalid(FieldErrors(vec![FieldError::new(
            "connector",
            format!(
                "unknown connector {name:?}; available: {}",
                known.join(", ")
            ),
        )]))
    })
}

/// Creates a configuration of `connector` called `name`.
///
/// # Errors
/// [`EngineError::Invalid`] naming every bad field; store and vault errors.
pub fn create(
    store: &Store,
    vault: &Vault,
    name: &str,
    connector: &str,
    change: &ConfigChange,
) -> Result<Saved, EngineError> {
    let mut errors = Vec::new();
    if let Err(e) = check_name(name) {
        errors.push(e);
    }
    let c = connector_of(connector)?;
    let mut warnings = Vec::new();
    let mut platform = Platform::default();
    apply_platform(&mut platform, change, &mut errors, &mut warnings);
    let input = merged_input(&BTreeMap::new(), &BTreeMap::new(), change);
    let values = match Values::validate(&c.spec().fields, &input) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.extend(e.0);
            None
        }
    };
    let (Some(values), true) = (values, errors.is_empty()) else {
        return Err(EngineError::Invalid(FieldErrors(errors)));
    };
    let sealed = vault.seal(name, &values.secret_part())?;
    let configuration = store.create_configuration(&NewConfiguration {
        name: name.to_string(),
        connector: connector.to_string(),
        enabled: change.enabled.unwrap_or(true),
        params: values.public_part(),
        secrets: sealed,
        platform,
    })?;
    Ok(Saved {
        configuration,
        warnings,
    })
}

/// Applies `change` to the configuration called `name`.
///
/// # Errors
/// As [`create`], or when it does not exist.
pub fn edit(
    store: &Store,
    vault: &Vault,
    name: &str,
    change: &ConfigChange,
) -> Result<Saved, EngineError> {
    let mut configuration = store
        .configuration(name)?
        .ok_or_else(|| EngineError::NotFound(format!("configuration {name:?}")))?;
    let c = connector_of(&configuration.connector)?;
    let secrets = vault.open_secrets(name, configuration.secrets.as_deref())?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    apply_platform(
        &mut configuration.platform,
        change,
        &mut errors,
        &mut warnings,
    );
    let input = merged_input(&configuration.params, &secrets, change);
    let values = match Values::validate(&c.spec().fields, &input) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.extend(e.0);
            None
        }
    };
    let (Some(values), true) = (values, errors.is_empty()) else {
        return Err(EngineError::Invalid(FieldErrors(errors)));
    };
    configuration.params = values.public_part();
    configuration.secrets = vault.seal(name, &values.secret_part())?;
    if let Some(e) = change.enabled {
        configuration.enabled = e;
    }
    let configuration = store.update_configuration(&configuration)?;
    Ok(Saved {
        configuration,
        warnings,
    })
}

/// The values of a configuration, secrets opened.
///
/// # Errors
/// When its secrets do not open or its values no longer fit the connector's fields.
pub fn values(
    vault: &Vault,
    configuration: &Configuration,
) -> Result<(&'static dyn Connector, Values), EngineError> {
    let c = connector_of(&configuration.connector)?;
    let secrets = vault.open_secrets(&configuration.name, configuration.secrets.as_deref())?;
    let mut input = configuration.params.clone();
    input.extend(secrets);
    let values = Values::validate(&c.spec().fields, &input).map_err(EngineError::Invalid)?;
    Ok((c, values))
}

/// The settings a connector sees for `platform`.
pub fn settings(platform: &Platform) -> Settings {
    Settings {
        interval: Duration::from_secs(platform.interval_secs.max(1) as u64),
        initial_range_days: platform.initial_range_days,
        polling: platform.polling,
        verify_tls: platform.verify_tls,
        ca_bundle: platform.ca_bundle.clone(),
        proxy: platform.proxy.clone(),
        timeout: Duration::from_secs(platform.timeout_secs.max(1) as u64),
    }
}

/// The connector and the context to run it for `configuration`.
///
/// # Errors
/// When its secrets do not open, its values are invalid, or its proxy/CA are unusable.
pub fn context(
    vault: &Vault,
    configuration: &Configuration,
    log: Arc<dyn LogSink>,
    last_success: Option<iocx_model::Timestamp>,
    cancel: CancellationToken,
) -> Result<(&'static dyn Connector, Context), EngineError> {
    let (connector, values) = values(vault, configuration)?;
    let settings = settings(&configuration.platform);
    let http =
        iocx_connectors::http::HttpClient::new(&settings, values.secret_values(), cancel.clone())?;
    let ctx = Context {
        configuration: configuration.name.clone(),
        values,
        settings,
        http,
        log,
        last_success,
        cancel,
    };
    Ok((connector, ctx))
}

/// The push targets `configuration` offers: its connector's declared targets, or for connectors
/// whose targets depend on the live tool, what the tool answers now.
///
/// # Errors
/// When the configuration's values do not open or the tool cannot be asked.
pub async fn targets(
    engine: &crate::Engine,
    configuration: &Configuration,
) -> Result<Vec<iocx_connectors::TargetSpec>, EngineError> {
    let (connector, ctx) = context(
        &engine.vault,
        configuration,
        Arc::new(iocx_connectors::TracingLog),
        None,
        CancellationToken::new(),
    )?;
    Ok(connector.targets(&ctx).await?)
}
