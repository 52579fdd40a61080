//! `iocx sim NAME`: a vendor API emulator in the foreground.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;

/// The emulators.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Trend Vision One: suspicious objects and exceptions (API v3.0).
    TrendVisionOne(Listen<iocx_sim::trend_vision_one::Args>),
    /// Netskope: Data Export alerts, URL lists, the file hash list.
    Netskope(Listen<iocx_sim::netskope::Args>),
    /// CrowdStrike Falcon: OAuth2, custom IOC management, alerts.
    Crowdstrike(Listen<iocx_sim::crowdstrike::Args>),
    /// SentinelOne: threat-intelligence IOCs, threats (API 2.1).
    Sentinelone(Listen<iocx_sim::sentinelone::Args>),
    /// VMware Carbon Black Cloud: custom feeds and reports, watchlists, alerts (HTTPS).
    CarbonBlack(Listen<iocx_sim::carbon_black::Args>),
    /// ServiceNow: Table API (observables, security incidents, incidents), batch API, OAuth.
    Servicenow(Listen<iocx_sim::servicenow::Args>),
    /// ThreatQ: OAuth2, indicators, data collections (saved searches), sources and attributes.
    Threatq(Listen<iocx_sim::threatq::Args>),
    /// MISP: events, attributes, tags, restSearch, the static feed (PyMISP works against it).
    Misp(Listen<iocx_sim::misp::Args>),
    /// TippingPoint SMS: the reputation database, tags, bulk imports, CEF events by syslog.
    TippingpointSms(Listen<iocx_sim::tippingpoint_sms::Args>),
}

/// An emulator's flags plus where to listen.
#[derive(Debug, clap::Args)]
pub struct Listen<A: clap::Args> {
    /// Where to listen (loopback only).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub args: A,
}

/// Runs an emulator until interrupted.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        macro_rules! start {
            ($l:expr, $module:ident, $title:expr) => {{
                let listener = bind($l.listen).await?;
                ($title, iocx_sim::$module::start(listener, &$l.args).await?.0)
            }};
        }
        let (name, handle) = match command {
            Command::TrendVisionOne(l) => start!(l, trend_vision_one, "Trend Vision One"),
            Command::Netskope(l) => start!(l, netskope, "Netskope"),
            Command::Crowdstrike(l) => start!(l, crowdstrike, "CrowdStrike Falcon"),
            Command::Sentinelone(l) => start!(l, sentinelone, "SentinelOne"),
            Command::CarbonBlack(l) => start!(l, carbon_black, "Carbon Black Cloud"),
            Command::Servicenow(l) => start!(l, servicenow, "ServiceNow"),
            Command::Threatq(l) => start!(l, threatq, "ThreatQ"),
            Command::Misp(l) => start!(l, misp, "MISP"),
            Command::TippingpointSms(l) => start!(l, tippingpoint_sms, "TippingPoint SMS"),
        };
        println!("{name} emulator listening on {}", handle.base_url);
        println!(
            "faults: GET/PUT {0}/_sim/faults · requests: GET {0}/_sim/requests · state: GET {0}/_sim/state",
            handle.base_url
        );
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = handle.wait() => {}
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    if !addr.ip().is_loopback() {
        anyhow::bail!("emulators listen on loopback only; {addr} is not a loopback address");
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))
}
