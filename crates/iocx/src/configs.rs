//! `iocx connectors …` and `iocx configs …`.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use iocx_connectors::{FieldKind, Values};
use iocx_engine::configs::{self, ConfigChange};
use iocx_store::Configuration;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::common::{Global, print_json};

/// `iocx connectors`.
#[derive(Debug, clap::Subcommand)]
pub enum ConnectorsCommand {
    /// The built-in connectors.
    List,
    /// A connector's fields, capabilities and targets.
    Show {
        /// The connector.
        name: String,
    },
}

/// `iocx configs`.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigsCommand {
    /// Add a configuration.
    Add {
        /// Its name.
        name: String,
        /// The connector it configures.
        #[arg(long)]
        connector: String,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Change a configuration.
    Edit {
        /// Its name.
        name: String,
        /// Clear a field (repeatable).
        #[arg(long = "unset", value_name = "KEY")]
        unset: Vec<String>,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// List configurations with their last run.
    List,
    /// Show a configuration (secrets as set / not set).
    Show {
        /// Its name.
        name: String,
    },
    /// Remove a configuration (the indicators it reported stay).
    Remove {
        /// Its name.
        name: String,
    },
    /// Enable a configuration.
    Enable {
        /// Its name.
        name: String,
    },
    /// Disable a configuration.
    Disable {
        /// Its name.
        name: String,
    },
    /// Test a configuration against the live API.
    Test {
        /// Its name.
        name: String,
    },
}

/// Values and platform settings of `configs add` and `configs edit`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChangeArgs {
    /// A field value, `key=value` (repeatable; see `iocx connectors show`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// A secret: `key=value`, `key=@FILE` (read from a file) or `key=-` (read from stdin).
    /// Prefer the file or stdin forms: values on the command line stay in shell history.
    #[arg(long = "secret", value_name = "KEY=VALUE|KEY=@FILE|KEY=-")]
    pub secrets: Vec<String>,
    /// How often it pulls, e.g. 5m, 1h (minimum 1 minute).
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// Days after its last sighting that an indicator from it stops counting (default 90).
    #[arg(long, value_name = "DAYS")]
    pub aging_days: Option<i64>,
    /// A reputation 1–10 that replaces what the source says.
    #[arg(long, value_name = "1-10")]
    pub override_reputation: Option<u8>,
    /// Stop overriding reputation.
    #[arg(long, conflicts_with = "override_reputation")]
    pub no_override_reputation: bool,
    /// How many days back the first pull starts (1–365).
    #[arg(long, value_name = "DAYS")]
    pub initial_range_days: Option<i64>,
    /// Do not pull on schedule.
    #[arg(long)]
    pub no_polling: bool,
    /// Pull on schedule.
    #[arg(long, conflicts_with = "no_polling")]
    pub polling: bool,
    /// Do not verify TLS certificates (dangerous).
    #[arg(long)]
    pub no_verify_tls: bool,
    /// Verify TLS certificates.
    #[arg(long, conflicts_with = "no_verify_tls")]
    pub verify_tls: bool,
    /// Extra trusted CA certificates (a PEM file).
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    /// An HTTP(S) proxy URL.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Request timeout, e.g. 30s.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Create or leave it disabled.
    #[arg(long)]
    pub disabled: bool,
}

fn to_change(
    fields: &[iocx_connectors::FieldSpec],
    args: &ChangeArgs,
) -> anyhow::Result<ConfigChange> {
    let mut change = ConfigChange::default();
    for item in &args.set {
        let (key, value) = item
            .split_once('=')
            .with_context(|| format!("--set {item:?}: write KEY=VALUE"))?;
        if fields
            .iter()
            .any(|f| f.key == key && matches!(f.kind, FieldKind::Secret))
        {
            bail!("--set {key}=…: {key} is a secret; use --secret {key}=@FILE or --secret {key}=-");
        }
        change
            .set
            .insert(key.to_string(), Values::parse_text(fields, key, value)?);
    }
    for item in &args.secrets {
        let (key, value) = item
            .split_once('=')
            .with_context(|| format!("--secret {item:?}: write KEY=VALUE, KEY=@FILE or KEY=-"))?;
        let value = if value == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the secret from stdin")?;
            s.trim_end_matches(['\n', '\r']).to_string()
        } else if let Some(path) = value.strip_prefix('@') {
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the secret {key} from {path}"))?
                .trim_end_matches(['\n', '\r'])
                .to_string()
        } else {
            value.to_string()
        };
        change.secrets.insert(key.to_string(), value);
    }
    let duration = |flag: &str, text: &Option<String>| -> anyhow::Result<Option<i64>> {
        text.as_deref()
            .map(|t| iocx_model::parse_duration(t).map_err(|e| anyhow::anyhow!("--{flag}: {e}")))
            .transpose()
    };
    change.interval_secs = duration("interval", &args.interval)?;
    change.timeout_secs = duration("timeout", &args.timeout)?;
    change.aging_days = args.aging_days;
    change.initial_range_days = args.initial_range_days;
    change.override_reputation = if args.no_override_reputation {
        Some(None)
    } else {
        args.override_reputation.map(Some)
    };
    change.polling = if args.no_polling {
        Some(false)
    } else {
        args.polling.then_some(true)
    };
    change.verify_tls = if args.no_verify_tls {
        Some(false)
    } else {
        args.verify_tls.then_some(true)
    };
    change.proxy = args
        .proxy
        .clone()
        .map(|p| if p.is_empty() { None } else { Some(p) });
    if let Some(path) = &args.ca_bundle {
        let pem =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        change.ca_bundle = Some(Some(pem));
    }
    change.enabled = args.disabled.then_some(false);
    Ok(change)
}

/// Runs `iocx connectors …`.
pub fn connectors(global: &Global, command: ConnectorsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConnectorsCommand::List => {
            let specs: Vec<_> = iocx_connectors::registry()
                .iter()
                .map(|c| c.spec().clone())
                .collect();
            if global.json {
                print_json(&specs)?;
            } else {
                for s in &specs {
                    let caps = &s.capabilities;
                    let mut can = Vec::new();
                    if caps.pull {
                        can.push("pull");
                    }
                    if caps.push {
                        can.push("push");
                    }
                    if caps.retract {
                        can.push("retract");
                    }
                    if caps.sightings {
                        can.push("sightings");
                    }
                    println!("{:<20} {:<40} {}", s.name, s.title, can.join(", "));
                }
            }
        }
        ConnectorsCommand::Show { name } => {
            let c = iocx_connectors::connector(&name).with_context(|| {
                format!("no connector called {name:?}; see `iocx connectors list`")
            })?;
            let s = c.spec();
            if global.json {
                print_json(s)?;
            } else {
                println!("{} — {}\n{}\n", s.name, s.title, s.description);
                println!("fields:");
                for f in &s.fields {
                    print_field(f);
                }
                for t in &s.targets {
                    println!("\ntarget {} — {}: {}", t.name, t.label, t.description);
                    let d = &t.delivery;
                    println!(
                        "  {:?}, batches of {}{}, kinds {}{}",
                        d.mode,
                        d.batch_size,
                        d.byte_budget
                            .map(|b| format!(" within {b} bytes"))
                            .unwrap_or_default(),
                        d.kinds
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        if d.removal { ", removal supported" } else { "" }
                    );
                    for f in &t.fields {
                        print_field(f);
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_field(f: &iocx_connectors::FieldSpec) {
    let kind = match &f.kind {
        FieldKind::Text { .. } => "text".to_string(),
        FieldKind::Textarea => "text (multi-line)".to_string(),
        FieldKind::Secret => "secret".to_string(),
        FieldKind::Number { min, max, .. } => match (min, max) {
            (Some(a), Some(b)) => format!("number {a}–{b}"),
            _ => "number".to_string(),
        },
        FieldKind::Choice { choices } => format!(
            "one of {}",
            choices
                .iter()
                .map(|c| c.value.as_str())
                .collect::<Vec<_>>()
                .join("|")
        ),
        FieldKind::MultiChoice { choices } => {
            format!(
                "any of {}",
                choices
                    .iter()
                    .map(|c| c.value.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }
        FieldKind::Boolean => "true|false".to_string(),
    };
    let default = f
        .default
        .as_ref()
        .map(|d| format!(" (default {d})"))
        .unwrap_or_default();
    let required = if f.required { " required" } else { "" };
    println!("  {:<22} {kind}{required}{default}", f.key);
    if !f.help.is_empty() {
        println!("  {:<22} {}", "", f.help);
    }
}

#[derive(Serialize)]
struct ConfigView<'a> {
    #[serde(flatten)]
    configuration: &'a Configuration,
    secrets: BTreeMap<String, bool>,
}

/// Runs `iocx configs …`.
pub fn configs(global: &Global, command: ConfigsCommand) -> anyhow::Result<ExitCode> {
    let engine = global.engine()?;
    let store = &engine.store;
    let vault = &engine.vault;
    let fields_of = |connector: &str| -> anyhow::Result<Vec<iocx_connectors::FieldSpec>> {
        Ok(iocx_connectors::connector(connector)
            .with_context(|| {
                format!("no connector called {connector:?}; see `iocx connectors list`")
            })?
            .spec()
            .fields
            .clone())
    };
    let saved = |s: configs::Saved| -> anyhow::Result<ExitCode> {
        for w in &s.warnings {
            eprintln!("warning: {w}");
        }
        if global.json {
            print_json(&s.configuration)?;
        } else {
            println!(
                "saved {} ({})",
                s.configuration.name, s.configuration.connector
            );
        }
        Ok(ExitCode::SUCCESS)
    };
    match command {
        ConfigsCommand::Add {
            name,
            connector,
            change,
        } => {
            let change = to_change(&fields_of(&connector)?, &change)?;
            saved(configs::create(store, vault, &name, &connector, &change)?)
        }
        ConfigsCommand::Edit {
            name,
            unset,
            change,
        } => {
            let existing = store
                .configuration(&name)?
                .with_context(|| format!("no configuration called {name:?}"))?;
            let mut change = to_change(&fields_of(&existing.connector)?, &change)?;
            change.unset = unset;
            saved(configs::edit(store, vault, &name, &change)?)
        }
        ConfigsCommand::Enable { name } => saved(configs::edit(
            store,
            vault,
            &name,
            &ConfigChange {
                enabled: Some(true),
                ..Default::default()
            },
        )?),
        ConfigsCommand::Disable { name } => saved(configs::edit(
            store,
            vault,
            &name,
            &ConfigChange {
                enabled: Some(false),
                ..Default::default()
            },
        )?),
        ConfigsCommand::Remove { name } => {
            if !store.delete_configuration(&name)? {
                bail!("no configuration called {name:?}");
            }
            println!("removed {name}; the indicators it reported stay, under its source");
            Ok(ExitCode::SUCCESS)
        }
        ConfigsCommand::List => {
            let all = store.configurations()?;
            if global.json {
                print_json(&all)?;
                return Ok(ExitCode::SUCCESS);
            }
            let jobs = store.jobs()?;
            println!(
                "{:<24} {:<18} {:<8} {:>9}  {:<24} NEXT",
                "NAME", "CONNECTOR", "STATE", "INTERVAL", "LAST RUN"
            );
            for c in &all {
                let last = store.runs(Some(&c.name), 1)?.into_iter().next();
                let next = jobs
                    .iter()
                    .find(|j| j.name == format!("pull:{}", c.name))
                    .map(|j| j.next_run_at.to_string());
                println!(
                    "{:<24} {:<18} {:<8} {:>8}s  {:<24} {}",
                    c.name,
                    c.connector,
                    if c.enabled { "enabled" } else { "disabled" },
                    c.platform.interval_secs,
                    last.map(|r| format!("{} {}", r.state.as_str(), r.started_at))
                        .unwrap_or_else(|| "never".into()),
                    next.unwrap_or_else(|| "-".into())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ConfigsCommand::Show { name } => {
            let c = store
                .configuration(&name)?
                .with_context(|| format!("no configuration called {name:?}"))?;
            let secrets = match configs::values(vault, &c) {
                Ok((_, v)) => v.secrets_set(),
                Err(e) => {
                    eprintln!("warning: {e}");
                    BTreeMap::new()
                }
            };
            if global.json {
                print_json(&ConfigView {
                    configuration: &c,
                    secrets,
                })?;
            } else {
                println!(
                    "{} ({}, {})",
                    c.name,
                    c.connector,
                    if c.enabled { "enabled" } else { "disabled" }
                );
                for (k, v) in &c.params {
                    println!("  {k:<22} {v}");
                }
                for (k, set) in &secrets {
                    println!(
                        "  {k:<22} {}",
                        if *set {
                            "(secret, set)"
                        } else {
                            "(secret, not set)"
                        }
                    );
                }
                let p = &c.platform;
                println!(
                    "  interval {} s · aging {} days · initial range {} days · polling {} · verify TLS {} · timeout {} s",
                    p.interval_secs,
                    p.aging_days,
                    p.initial_range_days,
                    p.polling,
                    p.verify_tls,
                    p.timeout_secs
                );
                if let Some(r) = p.override_reputation {
                    println!("  override reputation {r}");
                }
                if let Some(proxy) = &p.proxy {
                    println!("  proxy {proxy}");
                }
                if p.ca_bundle.is_some() {
                    println!("  custom CA bundle set");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ConfigsCommand::Test { name } => {
            let c = store
                .configuration(&name)?
                .with_context(|| format!("no configuration called {name:?}"))?;
            let runtime = tokio::runtime::Runtime::new()?;
            let result = runtime.block_on(async {
                let (connector, ctx) = configs::context(
                    vault,
                    &c,
                    std::sync::Arc::new(iocx_connectors::TracingLog),
                    None,
                    CancellationToken::new(),
                )?;
                connector
                    .validate(&ctx)
                    .await
                    .map_err(iocx_engine::EngineError::from)
            });
            match result {
                Ok(message) => {
                    println!("{name}: OK — {message}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("{name}: FAILED — {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
