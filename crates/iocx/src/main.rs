//! # iocx
//!
//! The `iocx` command line: one binary for the exchange's service, its administration, bulk
//! import and export, the vendor emulators and the benchmarks. Each subcommand lives in its own
//! module; they share [`common`] for opening the store and printing results (`--json` on every
//! command that prints).

#![forbid(unsafe_code)]

mod bench;
mod bench_serve;
mod bench_share;
mod common;
mod configs;
mod export;
mod import;
mod runs;
mod search;
mod serve;
mod sharing;
mod sim;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::common::Global;

/// iocx — a threat-intelligence exchange: pull indicators of compromise from your security
/// tools, keep one curated store, and share the right ones with every other tool.
#[derive(Debug, Parser)]
#[command(name = "iocx", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import indicators from files (txt, CSV, JSON, STIX 2.1) as one source.
    Import(import::Args),
    /// Export indicators to stdout (txt, CSV, JSON, STIX 2.1), streaming.
    Export(export::Args),
    /// Look up indicators by value (defanged values are fine).
    Search(search::SearchArgs),
    /// Counts by kind, source and severity, and the store's size.
    Stats(search::StatsArgs),
    /// The built-in connectors and their fields.
    #[command(subcommand)]
    Connectors(configs::ConnectorsCommand),
    /// Configurations: connectors configured for your tools.
    #[command(subcommand)]
    Configs(configs::ConfigsCommand),
    /// Pull a configuration now, with progress.
    Pull(runs::PullArgs),
    /// Recent runs (imports, pulls, shares) and their counts.
    Runs(runs::RunsArgs),
    /// A run's log lines.
    Logs(runs::LogsArgs),
    /// Business rules: what a sharing selects.
    #[command(subcommand)]
    Rules(sharing::RulesCommand),
    /// Allow-lists: values, ranges and domain suffixes rules never select.
    #[command(subcommand)]
    Lists(sharing::ListsCommand),
    /// Sharings: sources → rule → destination + target.
    #[command(subcommand)]
    Sharings(sharing::SharingsCommand),
    /// Share existing indicators of a period: count them, then send them.
    Sync(sharing::SyncArgs),
    /// Run a sharing now.
    Share(sharing::ShareArgs),
    /// Why an indicator is, or is not, shared by each sharing.
    Explain(sharing::ExplainArgs),
    /// Run the service: REST API, TAXII 2.1, EDL lists, metrics and the scheduler.
    Serve(serve::Args),
    /// The demo: `iocx serve --demo` (emulators of Trend Vision One and Netskope sharing both
    /// ways).
    Demo {
        /// The address to listen on.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Users who log in to the API and console.
    #[command(subcommand)]
    Users(serve::UsersCommand),
    /// API tokens.
    #[command(subcommand)]
    Tokens(serve::TokensCommand),
    /// Run the scheduler (pulls on schedule, leased jobs) without the HTTP server.
    Worker(runs::WorkerArgs),
    /// Run a vendor API emulator in the foreground.
    #[command(subcommand)]
    Sim(Box<sim::Command>),
    /// Measure iocx on this machine.
    #[command(subcommand)]
    Bench(bench::Command),
}

/// The audit entry a command writes when it succeeds: `(action, target)` for commands that
/// change something (secrets are never part of it).
fn audit_of(command: &Command) -> Option<(&'static str, String)> {
    use configs::ConfigsCommand as C;
    use sharing::{ListsCommand as L, RulesCommand as R, SharingsCommand as S};
    Some(match command {
        Command::Configs(C::Add { name, .. }) => ("configuration.create", name.clone()),
        Command::Configs(C::Edit { name, .. }) => ("configuration.update", name.clone()),
        Command::Configs(C::Remove { name }) => ("configuration.delete", name.clone()),
        Command::Configs(C::Enable { name }) => ("configuration.enable", name.clone()),
        Command::Configs(C::Disable { name }) => ("configuration.disable", name.clone()),
        Command::Rules(R::Add(a)) => ("rule.create", a.name.clone()),
        Command::Rules(R::Edit(a)) => ("rule.update", a.name.clone()),
        Command::Rules(R::Remove { name }) => ("rule.delete", name.clone()),
        Command::Lists(L::Add { name, .. }) => ("allowlist.create", name.clone()),
        Command::Lists(L::Put { name, .. }) => ("allowlist.add_entries", name.clone()),
        Command::Lists(L::Delete { name, .. }) => ("allowlist.remove_entries", name.clone()),
        Command::Lists(L::Remove { name }) => ("allowlist.delete", name.clone()),
        Command::Sharings(S::Add(a)) => ("sharing.create", a.name.clone()),
        Command::Sharings(S::Edit(a)) => ("sharing.update", a.name.clone()),
        Command::Sharings(S::Remove { name }) => ("sharing.delete", name.clone()),
        Command::Sharings(S::Enable { name }) => ("sharing.enable", name.clone()),
        Command::Sharings(S::Disable { name }) => ("sharing.disable", name.clone()),
        Command::Sync(a) if a.yes => ("sharing.sync", a.name.clone()),
        Command::Share(a) => ("sharing.run", a.name.clone()),
        Command::Pull(a) => ("configuration.run", a.name.clone()),
        Command::Import(a) => ("indicators.import", a.source.clone()),
        _ => return None,
    })
}

/// Writes the audit entry of a CLI change; a failure to write it is reported, not fatal.
fn write_audit(global: &Global, action: &str, target: &str) {
    let entry = iocx_store::NewAudit {
        actor: format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        ),
        action: action.into(),
        target: target.into(),
        before: None,
        after: None,
    };
    if let Err(e) = global.open_store().and_then(|s| Ok(s.audit(&entry)?)) {
        eprintln!("warning: could not write the audit log: {e:#}");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_) | Command::Demo { .. }) {
        common::init_logging(&cli.global);
    }
    let audit = audit_of(&cli.command);
    let result = match cli.command {
        Command::Serve(args) => serve::run(&cli.global, args),
        Command::Demo { listen } => serve::run(
            &cli.global,
            serve::Args {
                listen,
                config: None,
                demo: true,
            },
        ),
        Command::Users(command) => serve::users(&cli.global, command),
        Command::Tokens(command) => serve::tokens(&cli.global, command),
        Command::Import(args) => import::run(&cli.global, args),
        Command::Export(args) => export::run(&cli.global, args),
        Command::Search(args) => search::search(&cli.global, args),
        Command::Stats(args) => search::stats(&cli.global, args),
        Command::Connectors(command) => configs::connectors(&cli.global, command),
        Command::Configs(command) => configs::configs(&cli.global, command),
        Command::Pull(args) => runs::pull(&cli.global, args),
        Command::Runs(args) => runs::runs(&cli.global, args),
        Command::Logs(args) => runs::logs(&cli.global, args),
        Command::Worker(args) => runs::worker(&cli.global, args),
        Command::Rules(command) => sharing::rules_cmd(&cli.global, command),
        Command::Lists(command) => sharing::lists_cmd(&cli.global, command),
        Command::Sharings(command) => sharing::sharings_cmd(&cli.global, command),
        Command::Sync(args) => sharing::sync_cmd(&cli.global, args),
        Command::Share(args) => sharing::share_cmd(&cli.global, args),
        Command::Explain(args) => sharing::explain_cmd(&cli.global, args),
        Command::Sim(command) => sim::run(*command),
        Command::Bench(command) => bench::run(&cli.global, command),
    };
    match result {
        Ok(code) => {
            if let Some((action, target)) = audit
                && code == ExitCode::SUCCESS
            {
                write_audit(&cli.global, action, &target);
            }
            code
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
