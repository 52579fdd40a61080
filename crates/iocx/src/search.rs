//! `iocx search` and `iocx stats`.

use std::process::ExitCode;

use iocx_model::{ParseOptions, parse};
use iocx_store::IndicatorDetail;
use serde::Serialize;

use crate::common::{Global, print_json, thousands};

/// `iocx search` arguments.
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Values to look up; defanged values (hxxp, [.]) are fine.
    #[arg(required = true, value_name = "VALUE")]
    pub values: Vec<String>,
}

/// `iocx stats` arguments.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {}

#[derive(Serialize)]
struct Found {
    query: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    indicator: Option<IndicatorDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Runs `iocx search`.
pub fn search(global: &Global, args: SearchArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let mut results = Vec::new();
    for query in &args.values {
        match parse(query, None, &ParseOptions::default()) {
            Err(e) => results.push(Found {
                query: query.clone(),
                indicator: None,
                error: Some(e.to_string()),
            }),
            Ok(parsed) => {
                let wanted: Vec<_> = parsed.iter().cloned().collect();
                for (indicator, found) in wanted.iter().zip(store.lookup(&wanted, true)?) {
                    results.push(Found {
                        query: query.clone(),
                        error: found
                            .is_none()
                            .then(|| format!("{indicator} is not in the store")),
                        indicator: found,
                    });
                }
            }
        }
    }
    let found_any = results.iter().any(|r| r.indicator.is_some());
    if global.json {
        print_json(&results)?;
    } else {
        for r in &results {
            match (&r.indicator, &r.error) {
                (Some(d), _) => print_detail(d),
                (None, Some(e)) => println!("{}: {e}\n", r.query),
                (None, None) => {}
            }
        }
    }
    Ok(if found_any {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_detail(d: &IndicatorDetail) {
    let a = &d.aggregate;
    println!("{} {}", d.indicator.kind, d.indicator.value);
    println!(
        "  {} · severity {} · reputation {} · {} hits · {} source{}{}",
        if d.active { "active" } else { "inactive" },
        a.severity,
        a.reputation,
        thousands(a.hits),
        a.sources,
        if a.sources == 1 { "" } else { "s" },
        if a.safe { " · SAFE" } else { "" }
    );
    println!("  first seen {} · last seen {}", a.first_seen, a.last_seen);
    match a.expires {
        Some(e) => println!("  expires {e} · ages out {}", a.aged_at),
        None => println!("  never expires · ages out {}", a.aged_at),
    }
    if !a.tags.is_empty() {
        println!("  tags: {}", a.tags.as_slice().join(", "));
    }
    for o in &d.observations {
        let ob = &o.observation;
        let at = &ob.attributes;
        let mut extra = Vec::new();
        if let Some(r) = at.reputation {
            extra.push(format!("reputation {r}"));
        }
        if at.safe {
            extra.push("safe".into());
        }
        if ob.echo {
            extra.push("echo of iocx's own push".into());
        }
        if let Some(e) = at.expires {
            extra.push(format!("expires {e}"));
        }
        println!(
            "  · {}: severity {}, {} hits, {} → {}{}{}",
            o.source,
            at.severity,
            thousands(ob.hits),
            ob.first_seen,
            ob.last_seen,
            if extra.is_empty() {
                String::new()
            } else {
                format!(", {}", extra.join(", "))
            },
            at.comment
                .as_deref()
                .map(|c| format!(" — {c}"))
                .unwrap_or_default()
        );
        if !at.tags.is_empty() {
            println!("      tags: {}", at.tags.as_slice().join(", "));
        }
        if let Some(l) = &at.link {
            println!("      {l}");
        }
    }
    println!();
}

/// Runs `iocx stats`.
pub fn stats(global: &Global, _args: StatsArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let stats = store.stats()?;
    if global.json {
        print_json(&stats)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} ({})", store.describe(), stats.backend);
    println!(
        "{} indicators ({} active), {} observations, {:.1} MiB",
        thousands(stats.indicators),
        thousands(stats.active),
        thousands(stats.observations),
        stats.size_bytes as f64 / (1024.0 * 1024.0)
    );
    println!("reconciliation: {}", stats.reconciliation);
    let section = |title: &str, map: &std::collections::BTreeMap<String, u64>| {
        if map.is_empty() {
            return;
        }
        println!("\nby {title}:");
        let mut rows: Vec<_> = map.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (k, v) in rows {
            println!("  {k:<24} {:>14}", thousands(*v));
        }
    };
    section("kind", &stats.by_kind);
    section("severity", &stats.by_severity);
    section("source", &stats.by_source);
    Ok(ExitCode::SUCCESS)
}
