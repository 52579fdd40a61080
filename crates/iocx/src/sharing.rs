//! `iocx rules …`, `iocx lists …`, `iocx sharings …`, `iocx sync`, `iocx share`, `iocx explain`.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use iocx_engine::rules;
use iocx_engine::share::{ShareMode, preview, run_share};
use iocx_model::rule::AllowList;
use iocx_model::{ParseOptions, Timestamp, parse};
use iocx_store::{AllowEntry, SharingSpec};
use tokio_util::sync::CancellationToken;

use crate::common::{Global, print_json, thousands};

/// `iocx rules`.
#[derive(Debug, clap::Subcommand)]
pub enum RulesCommand {
    /// Add a rule (checked before it is saved).
    Add(RuleArgs),
    /// Change a rule.
    Edit(RuleArgs),
    /// List rules.
    List,
    /// Show a rule.
    Show {
        /// The rule.
        name: String,
    },
    /// Remove a rule (refused while a sharing uses it).
    Remove {
        /// The rule.
        name: String,
    },
    /// Count and sample what an expression selects now, without saving anything.
    Preview {
        /// The expression.
        expression: String,
        /// Exclude with these allow-lists (repeatable).
        #[arg(long = "exclude", value_name = "LIST")]
        exclude: Vec<String>,
        /// How many to show.
        #[arg(long, default_value_t = 10)]
        sample: usize,
    },
}

/// A rule's fields.
#[derive(Debug, clap::Args)]
pub struct RuleArgs {
    /// The rule's name.
    pub name: String,
    /// The expression (see docs/rules.md); on edit, the current one when omitted.
    pub expression: Option<String>,
    /// What it is for.
    #[arg(long)]
    pub description: Option<String>,
    /// Never select what these allow-lists hold (repeatable; replaces the list on edit).
    #[arg(long = "exclude", value_name = "LIST")]
    pub exclude: Vec<String>,
    /// Mute the rule (its sharings send nothing new).
    #[arg(long)]
    pub mute: bool,
    /// Unmute the rule.
    #[arg(long, conflicts_with = "mute")]
    pub unmute: bool,
}

/// `iocx lists`.
#[derive(Debug, clap::Subcommand)]
pub enum ListsCommand {
    /// Create an allow-list.
    Add {
        /// Its name.
        name: String,
        /// What it holds.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List allow-lists (the built-ins `private`, `reserved`, `documentation` included).
    List,
    /// Show an allow-list's entries.
    Show {
        /// Its name.
        name: String,
    },
    /// Add entries: values, CIDR ranges (10.0.0.0/8) or domain suffixes (.example.com); `-` reads
    /// them one per line from stdin.
    Put {
        /// The list.
        name: String,
        /// The entries.
        #[arg(required = true)]
        entries: Vec<String>,
        /// A comment for these entries.
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Remove entries.
    Delete {
        /// The list.
        name: String,
        /// The entries.
        #[arg(required = true)]
        entries: Vec<String>,
    },
    /// Remove an allow-list (refused while a rule uses it).
    Remove {
        /// Its name.
        name: String,
    },
}

/// `iocx sharings`.
#[derive(Debug, clap::Subcommand)]
pub enum SharingsCommand {
    /// Add a sharing: sources → rule → destination + target.
    Add(SharingArgs),
    /// Change a sharing (only the options given change).
    Edit(SharingArgs),
    /// List sharings with their delivery counts.
    List,
    /// Show a sharing and its ledger by state and reason.
    Show {
        /// The sharing.
        name: String,
    },
    /// Remove a sharing and its ledger (what it delivered stays at the destination).
    Remove {
        /// The sharing.
        name: String,
    },
    /// Enable a sharing: what already matches is shared at its next run.
    Enable {
        /// The sharing.
        name: String,
    },
    /// Disable a sharing.
    Disable {
        /// The sharing.
        name: String,
    },
}

/// A sharing's fields.
#[derive(Debug, clap::Args)]
pub struct SharingArgs {
    /// The sharing's name.
    pub name: String,
    /// A source configuration (repeatable; none means every source).
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
    /// Read from every source (clears --source on edit).
    #[arg(long)]
    pub all_sources: bool,
    /// The rule.
    #[arg(long)]
    pub rule: Option<String>,
    /// The destination configuration.
    #[arg(long)]
    pub destination: Option<String>,
    /// The target at the destination (see `iocx connectors show`).
    #[arg(long)]
    pub target: Option<String>,
    /// A target parameter, `key=value` (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// How often it runs, e.g. 15m.
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// Do not also run after each pull of a source.
    #[arg(long)]
    pub no_after_pull: bool,
    /// What it is for.
    #[arg(long)]
    pub description: Option<String>,
    /// Create it enabled (shares what already matches at once).
    #[arg(long)]
    pub enabled: bool,
}

/// `iocx sync` arguments: the seeds' "Share existing IoCs" (Fetch, then Sync).
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// The sharing.
    pub name: String,
    /// Indicators last seen within this many days.
    #[arg(long, conflicts_with = "all", required_unless_present = "all")]
    pub days: Option<i64>,
    /// Every indicator the rule selects.
    #[arg(long)]
    pub all: bool,
    /// Send without asking.
    #[arg(long)]
    pub yes: bool,
}

/// `iocx share` arguments.
#[derive(Debug, clap::Args)]
pub struct ShareArgs {
    /// The sharing to run now.
    pub name: String,
}

/// `iocx explain` arguments.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The indicator (defanged is fine).
    pub value: String,
    /// Only this sharing.
    #[arg(long)]
    pub sharing: Option<String>,
}

/// Runs `iocx rules …`.
pub fn rules_cmd(global: &Global, command: RulesCommand) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    rules::ensure_builtin_allowlists(&store)?;
    match command {
        RulesCommand::Add(a) | RulesCommand::Edit(a)
            if a.expression.as_deref().is_some_and(|e| e.trim().is_empty()) =>
        {
            bail!("rule {}: the expression is empty", a.name)
        }
        RulesCommand::Add(a) => {
            if store.rule(&a.name)?.is_some() {
                bail!(
                    "a rule named {:?} exists already; use `iocx rules edit`",
                    a.name
                );
            }
            let expression = a.expression.clone().context("give the rule's expression")?;
            save_rule(
                global,
                &store,
                &a,
                &expression,
                a.description.clone().unwrap_or_default(),
                a.exclude.clone(),
                a.mute,
            )
        }
        RulesCommand::Edit(a) => {
            let old = store
                .rule(&a.name)?
                .with_context(|| format!("no rule called {:?}", a.name))?;
            let expression = a.expression.clone().unwrap_or(old.expression.clone());
            let exclusions = if a.exclude.is_empty() {
                old.exclusions.clone()
            } else {
                a.exclude.clone()
            };
            let muted = if a.mute {
                true
            } else if a.unmute {
                false
            } else {
                old.muted
            };
            save_rule(
                global,
                &store,
                &a,
                &expression,
                a.description.clone().unwrap_or(old.description),
                exclusions,
                muted,
            )
        }
        RulesCommand::List => {
            let all = store.rules()?;
            if global.json {
                print_json(&all)?;
            } else {
                for r in all {
                    println!(
                        "{:<24} {}{}",
                        r.name,
                        r.expression.replace('\n', " "),
                        if r.muted { "  (muted)" } else { "" }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RulesCommand::Show { name } => {
            let r = store
                .rule(&name)?
                .with_context(|| format!("no rule called {name:?}"))?;
            if global.json {
                print_json(&r)?;
            } else {
                println!(
                    "{}{}\n  {}",
                    r.name,
                    if r.muted { " (muted)" } else { "" },
                    r.expression
                );
                if !r.description.is_empty() {
                    println!("  {}", r.description);
                }
                if !r.exclusions.is_empty() {
                    println!("  excludes: {}", r.exclusions.join(", "));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RulesCommand::Remove { name } => {
            if !store.delete_rule(&name)? {
                bail!("no rule called {name:?}");
            }
            println!("removed rule {name}");
            Ok(ExitCode::SUCCESS)
        }
        RulesCommand::Preview {
            expression,
            exclude,
            sample,
        } => {
            let rule = iocx_store::RuleRow {
                id: 0,
                name: "(preview)".into(),
                expression,
                description: String::new(),
                exclusions: exclude,
                muted: false,
                created_at: Timestamp::now(),
                updated_at: Timestamp::now(),
            };
            let started = std::time::Instant::now();
            let compiled = rules::compile(&store, &rule, Timestamp::now())?;
            let count = store.count_matching(&compiled.sql, &compiled.params)?;
            let mut shown = Vec::new();
            let mut after = 0;
            'outer: while shown.len() < sample {
                let ids = store.select_ids(&compiled.sql, &compiled.params, after, 500)?;
                let Some(&last) = ids.last() else { break };
                after = last;
                for d in store.details(&ids, false)? {
                    if iocx_engine::share::Selector::excluded(
                        &compiled,
                        d.indicator.kind,
                        &d.indicator.value,
                    )
                    .is_none()
                    {
                        shown.push(d);
                        if shown.len() >= sample {
                            break 'outer;
                        }
                    }
                }
            }
            let seconds = started.elapsed().as_secs_f64();
            if global.json {
                print_json(
                    &serde_json::json!({"count": count, "sample": shown, "seconds": seconds, "rule": compiled.rule.to_string()}),
                )?;
            } else {
                println!(
                    "{} indicators match {} ({seconds:.2} s; allow-list exclusions apply when shared)",
                    thousands(count),
                    compiled.rule
                );
                for d in &shown {
                    println!(
                        "  {:<7} {:<60} {:<8} {} hits, last seen {}",
                        d.indicator.kind.as_str(),
                        d.indicator.value,
                        d.aggregate.severity.as_str(),
                        d.aggregate.hits,
                        d.aggregate.last_seen
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn save_rule(
    global: &Global,
    store: &iocx_store::Store,
    a: &RuleArgs,
    expression: &str,
    description: String,
    exclusions: Vec<String>,
    muted: bool,
) -> anyhow::Result<ExitCode> {
    let input = iocx_engine::admin::RuleInput {
        expression: expression.to_string(),
        description,
        exclusions,
        muted,
    };
    let saved = iocx_engine::admin::save_rule(store, &a.name, &input)?;
    if global.json {
        print_json(&saved)?;
    } else {
        println!("saved rule {}: {}", saved.name, saved.expression);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `iocx lists …`.
pub fn lists_cmd(global: &Global, command: ListsCommand) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    rules::ensure_builtin_allowlists(&store)?;
    match command {
        ListsCommand::Add { name, description } => {
            iocx_engine::configs::check_name(&name)?;
            if store.allowlist(&name)?.is_some() {
                bail!("an allow-list named {name:?} exists already");
            }
            store.save_allowlist(&name, &description, false)?;
            println!("created allow-list {name}");
        }
        ListsCommand::List => {
            let lists = store.allowlists(true)?;
            if global.json {
                print_json(&lists)?;
            } else {
                for l in lists {
                    println!(
                        "{:<20} {:>8} entries{}  {}",
                        l.name,
                        l.entries.len(),
                        if l.builtin { " (built-in)" } else { "" },
                        l.description
                    );
                }
            }
        }
        ListsCommand::Show { name } => {
            let l = store
                .allowlist(&name)?
                .with_context(|| format!("no allow-list called {name:?}"))?;
            if global.json {
                print_json(&l)?;
            } else {
                for e in &l.entries {
                    println!(
                        "{}{}",
                        e.entry,
                        if e.comment.is_empty() {
                            String::new()
                        } else {
                            format!("  # {}", e.comment)
                        }
                    );
                }
            }
        }
        ListsCommand::Put {
            name,
            entries,
            comment,
        } => {
            let list = store
                .allowlist(&name)?
                .with_context(|| format!("no allow-list called {name:?}"))?;
            if list.builtin {
                bail!("{name} is built in; create your own list with `iocx lists add`");
            }
            let mut raw = Vec::new();
            for e in entries {
                if e == "-" {
                    for line in std::io::stdin().lock().lines() {
                        let line = line?;
                        let t = line.trim();
                        if !t.is_empty() && !t.starts_with('#') {
                            raw.push(t.to_string());
                        }
                    }
                } else {
                    raw.push(e);
                }
            }
            let mut checked = Vec::new();
            for e in raw {
                checked.push(AllowEntry {
                    entry: AllowList::normalise(&e)?,
                    comment: comment.clone(),
                });
            }
            let n = store.add_allow_entries(&name, &checked)?;
            println!(
                "{name}: {n} entries added ({} already there)",
                checked.len() as u64 - n
            );
        }
        ListsCommand::Delete { name, entries } => {
            let normalised: Vec<String> = entries
                .iter()
                .map(|e| AllowList::normalise(e).unwrap_or_else(|_| e.clone()))
                .collect();
            let n = store.remove_allow_entries(&name, &normalised)?;
            println!("{name}: {n} entries removed");
        }
        ListsCommand::Remove { name } => {
            if !store.delete_allowlist(&name)? {
                bail!("no allow-list called {name:?}");
            }
            println!("removed allow-list {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `iocx sharings …`.
pub fn sharings_cmd(global: &Global, command: SharingsCommand) -> anyhow::Result<ExitCode> {
    let engine = global.engine()?;
    let store = &engine.store;
    match command {
        SharingsCommand::Add(a) => {
            iocx_engine::configs::check_name(&a.name)?;
            let spec = SharingSpec {
                name: a.name.clone(),
                description: a.description.clone().unwrap_or_default(),
                enabled: a.enabled,
                sources: a.sources.clone(),
                rule: a.rule.clone().context("--rule is required")?,
                destination: a.destination.clone().context("--destination is required")?,
                target: a.target.clone().context("--target is required")?,
                params: BTreeMap::new(),
                interval_secs: 300,
                after_pull: !a.no_after_pull,
            };
            save_sharing(global, &engine, None, spec, &a)
        }
        SharingsCommand::Edit(a) => {
            let old = store
                .sharing(&a.name)?
                .with_context(|| format!("no sharing called {:?}", a.name))?;
            let spec = SharingSpec {
                name: old.name.clone(),
                description: a.description.clone().unwrap_or(old.description.clone()),
                enabled: old.enabled || a.enabled,
                sources: if a.all_sources {
                    Vec::new()
                } else if a.sources.is_empty() {
                    old.sources.clone()
                } else {
                    a.sources.clone()
                },
                rule: a.rule.clone().unwrap_or(old.rule.clone()),
                destination: a.destination.clone().unwrap_or(old.destination.clone()),
                target: a.target.clone().unwrap_or(old.target.clone()),
                params: old.params.clone(),
                interval_secs: old.interval_secs,
                after_pull: old.after_pull && !a.no_after_pull,
            };
            save_sharing(global, &engine, Some(&old.name), spec, &a)
        }
        SharingsCommand::List => {
            let all = store.sharings()?;
            if global.json {
                print_json(&all)?;
                return Ok(ExitCode::SUCCESS);
            }
            for s in all {
                let counts = store.delivery_counts(s.id)?;
                let by_state = |st: iocx_store::DeliveryState| {
                    counts
                        .iter()
                        .filter(|c| c.0 == st)
                        .map(|c| c.2)
                        .sum::<u64>()
                };
                println!(
                    "{:<22} {:<9} {} → {} → {}/{}  shared {}, failed {}, skipped {}, retracted {}",
                    s.name,
                    if s.enabled { "enabled" } else { "disabled" },
                    if s.sources.is_empty() {
                        "all sources".to_string()
                    } else {
                        s.sources.join(",")
                    },
                    s.rule,
                    s.destination,
                    s.target,
                    thousands(by_state(iocx_store::DeliveryState::Shared)),
                    thousands(by_state(iocx_store::DeliveryState::Failed)),
                    thousands(by_state(iocx_store::DeliveryState::Skipped)),
                    thousands(by_state(iocx_store::DeliveryState::Retracted)),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SharingsCommand::Show { name } => {
            let s = store
                .sharing(&name)?
                .with_context(|| format!("no sharing called {name:?}"))?;
            let counts = store.delivery_counts(s.id)?;
            if global.json {
                let rows: Vec<_> = counts
                    .iter()
                    .map(|(st, r, n)| serde_json::json!({"state": st, "reason": r, "count": n}))
                    .collect();
                print_json(&serde_json::json!({"sharing": s, "ledger": rows}))?;
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{} ({})",
                s.name,
                if s.enabled { "enabled" } else { "disabled" }
            );
            println!(
                "  sources: {}",
                if s.sources.is_empty() {
                    "all".to_string()
                } else {
                    s.sources.join(", ")
                }
            );
            println!(
                "  rule: {}\n  destination: {} / target {}",
                s.rule, s.destination, s.target
            );
            for (k, v) in &s.params {
                println!("  {k} = {v}");
            }
            println!(
                "  every {} s{}",
                s.interval_secs,
                if s.after_pull {
                    ", and after each pull of a source"
                } else {
                    ""
                }
            );
            for (state, reason, n) in counts {
                println!(
                    "  {:<10} {:>10}  {}",
                    state.as_str(),
                    thousands(n),
                    reason.unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SharingsCommand::Remove { name } => {
            if !store.delete_sharing(&name)? {
                bail!("no sharing called {name:?}");
            }
            println!("removed sharing {name}");
            Ok(ExitCode::SUCCESS)
        }
        SharingsCommand::Enable { name } | SharingsCommand::Disable { name }
            if store.sharing(&name)?.is_none() =>
        {
            bail!("no sharing called {name:?}")
        }
        SharingsCommand::Enable { name } => set_enabled(&engine, &name, true),
        SharingsCommand::Disable { name } => set_enabled(&engine, &name, false),
    }
}

fn set_enabled(
    engine: &iocx_engine::Engine,
    name: &str,
    enabled: bool,
) -> anyhow::Result<ExitCode> {
    let s = engine
        .store
        .sharing(name)?
        .with_context(|| format!("no sharing called {name:?}"))?;
    let spec = spec_of(&s, enabled);
    engine.store.save_sharing(Some(name), &spec)?;
    if enabled {
        // What already matches is shared at the next run: make it due now.
        engine
            .store
            .set_job_due(&format!("share:{name}"), Timestamp::now())?;
        println!(
            "enabled {name}: what already matches is shared at its next run (`iocx share {name}` runs it now)"
        );
    } else {
        println!("disabled {name}");
    }
    Ok(ExitCode::SUCCESS)
}

fn spec_of(s: &iocx_store::SharingRow, enabled: bool) -> SharingSpec {
    SharingSpec {
        enabled,
        ..iocx_engine::admin::spec_of(s)
    }
}

fn save_sharing(
    global: &Global,
    engine: &iocx_engine::Engine,
    existing: Option<&str>,
    mut spec: SharingSpec,
    a: &SharingArgs,
) -> anyhow::Result<ExitCode> {
    let mut pairs = Vec::new();
    for p in &a.params {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--param {p:?}: write KEY=VALUE"))?;
        pairs.push((k.to_string(), v.to_string()));
    }
    if let Some(i) = &a.interval {
        spec.interval_secs = iocx_model::parse_duration(i)
            .map_err(anyhow::Error::msg)?
            .max(60);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let saved = runtime.block_on(iocx_engine::admin::save_sharing(
        engine,
        existing,
        spec,
        iocx_engine::admin::ParamInput::Text(pairs),
    ))?;
    if global.json {
        print_json(&saved)?;
    } else {
        println!(
            "saved sharing {} ({}){}",
            saved.name,
            if saved.enabled { "enabled" } else { "disabled" },
            if saved.enabled {
                ""
            } else {
                "; `iocx sharings enable` starts it, `iocx sync` shares existing indicators"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `iocx share NAME`: one run now.
pub fn share_cmd(global: &Global, args: ShareArgs) -> anyhow::Result<ExitCode> {
    let engine = global.engine()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let (run, c) = runtime.block_on(run_share(
        &engine,
        &args.name,
        ShareMode::Regular,
        false,
        CancellationToken::new(),
    ))?;
    report(global, &run, &c)
}

fn report(
    global: &Global,
    run: &iocx_store::Run,
    c: &iocx_engine::share::ShareCounts,
) -> anyhow::Result<ExitCode> {
    if global.json {
        print_json(&serde_json::json!({"run": run, "counts": c}))?;
    } else {
        println!(
            "run {} {}: {} selected — {} shared, {} unchanged, {} failed, {} retracted",
            run.id,
            run.state.as_str(),
            thousands(c.selected),
            thousands(c.shared),
            thousands(c.unchanged),
            thousands(c.failed),
            thousands(c.retracted)
        );
        for (reason, n) in &c.skipped {
            println!("  skipped {}: {reason}", thousands(*n));
        }
        for (list, n) in &c.excluded {
            println!("  excluded by {list}: {}", thousands(*n));
        }
    }
    Ok(if run.state == iocx_store::RunState::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs `iocx sync`: count what the window holds, then (after confirmation) send it.
pub fn sync_cmd(global: &Global, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let engine = global.engine()?;
    let since = args.days.map(|d| Timestamp::now().plus_days(-d.max(0)));
    let mode = ShareMode::Sync { since };
    let runtime = tokio::runtime::Runtime::new()?;
    let (counts, send, retract) = runtime.block_on(preview(&engine, &args.name, mode))?;
    let window = match args.days {
        Some(d) => format!("last seen in the last {d} days"),
        None => "of all time".to_string(),
    };
    if global.json && !args.yes {
        print_json(&serde_json::json!({"to_send": send, "to_retract": retract, "counts": counts}))?;
        return Ok(ExitCode::SUCCESS);
    }
    if !global.json {
        println!(
            "{}: {} indicators {window} would be sent ({} to retract)",
            args.name,
            thousands(send),
            thousands(retract)
        );
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!("not sent: confirm with --yes when not running interactively");
        }
        print!("Send them now? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("nothing sent");
            return Ok(ExitCode::SUCCESS);
        }
    }
    let (run, c) = runtime.block_on(run_share(
        &engine,
        &args.name,
        mode,
        false,
        CancellationToken::new(),
    ))?;
    report(global, &run, &c)
}

/// Runs `iocx explain`.
pub fn explain_cmd(global: &Global, args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let engine = global.engine()?;
    let parsed = parse(&args.value, None, &ParseOptions::default())
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.value))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let (detail, answers) = runtime.block_on(iocx_engine::explain::explain(
        &engine,
        parsed.first(),
        args.sharing.as_deref(),
    ))?;
    if global.json {
        print_json(&serde_json::json!({"indicator": detail, "sharings": answers}))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} {} — {}, severity {}, {} hits, sources: {}",
        detail.indicator.kind,
        detail.indicator.value,
        if detail.active { "active" } else { "inactive" },
        detail.aggregate.severity,
        detail.aggregate.hits,
        detail
            .observations
            .iter()
            .map(|o| o.source.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if answers.is_empty() {
        println!(
            "no sharings{}",
            args.sharing
                .map(|s| format!(" called {s}"))
                .unwrap_or_default()
        );
    }
    for a in answers {
        println!(
            "\n{} → {}/{}: {}",
            a.sharing,
            a.destination,
            a.target,
            a.verdict.to_uppercase()
        );
        for r in &a.reasons {
            println!("  · {r}");
        }
        if let Some(e) = &a.rule {
            print_terms(e, 2);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_terms(e: &iocx_model::rule::Explanation, depth: usize) {
    if e.parts.is_empty() {
        println!(
            "{:width$}{} {}",
            "",
            if e.holds { "✓" } else { "✗" },
            e.term,
            width = depth * 2
        );
    } else {
        println!(
            "{:width$}{} {}",
            "",
            if e.holds { "✓" } else { "✗" },
            e.term,
            width = depth * 2
        );
        for p in &e.parts {
            print_terms(p, depth + 1);
        }
    }
}
