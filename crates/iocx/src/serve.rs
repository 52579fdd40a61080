//! `iocx serve`: the service (API, TAXII, EDL, metrics, scheduler), and `--demo`, which starts
//! the Trend Vision One and Netskope emulators beside it with the seeds' scenario configured.
//! Also `iocx users` and `iocx tokens`, which manage access without the server running.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use iocx_engine::configs::{self, ConfigChange};
use iocx_engine::{Engine, admin};
use iocx_model::Timestamp;
use iocx_server::ServeConfig;
use iocx_server::config::LogFormat;
use iocx_store::{NewAudit, Role, SharingSpec};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::common::{Global, print_json, shutdown_signal};

/// `iocx serve` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The address to listen on (overrides the config file's `server.listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// A TOML configuration file (see docs/deployment.md); `IOCX__SECTION__KEY` variables
    /// override it.
    #[arg(long, value_name = "FILE", env = "IOCX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Start the Trend Vision One and Netskope emulators with the seeds' scenario configured,
    /// in a fresh temporary data directory, so indicators flow with no vendor account.
    #[arg(long)]
    pub demo: bool,
}

fn init_logging(config: &ServeConfig, global: &Global) {
    // --log / IOCX_LOG win when set to something other than the CLI default.
    let level = if global.log != "warn" {
        global.log.clone()
    } else {
        format!("{},tower_http=warn,hyper=warn", config.log.level)
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Runs `iocx serve`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let mut config = ServeConfig::load(args.config.as_deref())?;
    init_logging(&config, global);
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    let listen: std::net::SocketAddr = config.server.listen.parse().with_context(|| {
        format!(
            "--listen {}: not an address like 127.0.0.1:8080",
            config.server.listen
        )
    })?;
    let mut global = global.clone();
    let demo_dir = if args.demo {
        let dir = tempfile::Builder::new()
            .prefix("iocx-demo-")
            .tempdir()
            .context("creating the demo's data directory")?;
        global.data = dir.path().to_path_buf();
        global.database = None;
        Some(dir)
    } else {
        if let (Some(url), None) = (&config.database.url, &global.database) {
            global.database = Some(url.clone());
        }
        if let Some(d) = &config.database.data {
            global.data = d.clone();
        }
        None
    };
    let mut engine = global.engine()?;
    engine.options.max_concurrent = config.scheduler.max_jobs;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let demo_dir_set = demo_dir.is_some();
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        shutdown_signal(cancel.clone());
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let address = listener.local_addr().context("the listener's address")?;
        let scheme = if config.server.tls_cert.is_some() { "https" } else { "http" };
        let app = iocx_server::app(engine, config, cancel.clone()).await?;
        let store = app.store().clone();
        tokio::task::spawn_blocking(move || iocx_engine::rules::ensure_builtin_allowlists(&store))
            .await
            .context("preparing the built-in allow-lists")??;
        let password = iocx_server::auth::bootstrap_admin(&app).await?;
        let demo = if demo_dir_set {
            Some(start_demo(&app.engine).await?)
        } else {
            None
        };
        println!("iocx {} serving on {scheme}://{address}/", env!("CARGO_PKG_VERSION"));
        println!("  console:  {scheme}://{address}/ui/ (log in as admin)");
        println!("  store:    {}", app.store().describe());
        println!("  API:      {scheme}://{address}/api/v1/ (OpenAPI: /api/v1/openapi.json)");
        println!("  TAXII:    {scheme}://{address}/taxii2/   metrics: /metrics   health: /healthz");
        if let Some(p) = &password {
            println!("  created user admin with the one-time password: {p}");
            println!("  (change it with `iocx users passwd admin`, or set IOCX_ADMIN_PASSWORD before the first start)");
        }
        if let Some(d) = &demo {
            let (token, _) = app
                .create_token("admin", "demo", Role::Admin, Some(Timestamp::now().plus_days(1)))
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
            println!();
            println!("Demo: Netskope emulator at {}, Trend Vision One emulator at {}", d.netskope_url, d.vision_one_url);
            println!("  data directory (removed on exit): {}", global.data.display());
            println!("  configurations pull every minute; sharings run after each pull:");
            println!("    netskope-to-vision-one, vision-one-to-netskope, vision-one-hashes-to-netskope");
            println!("  an API token for the demo (admin, 1 day): {token}");
            println!("  try:  curl -s -H 'Authorization: Bearer {token}' {scheme}://{address}/api/v1/stats");
            println!("        curl -s -H 'Authorization: Bearer {token}' '{scheme}://{address}/api/v1/runs?limit=5'");
            println!("        curl -s -u admin:{token} {scheme}://{address}/taxii2/api/collections/");
        }
        println!("Ctrl-C stops it.");
        iocx_server::serve(app, listener).await?;
        drop(demo);
        Ok::<_, anyhow::Error>(())
    })?;
    drop(demo_dir);
    Ok(ExitCode::SUCCESS)
}

/// The demo's running emulators.
struct Demo {
    netskope_url: String,
    vision_one_url: String,
    _handles: Vec<iocx_sim::common::SimHandle>,
}

/// Starts the emulators and configures the seeds' scenario: Netskope alerts → Trend Vision
/// One's Suspicious Object List, Trend Vision One's objects → a Netskope URL list and the
/// file hash list.
async fn start_demo(engine: &Engine) -> anyhow::Result<Demo> {
    use iocx_sim::{netskope as ns, trend_vision_one as tv1};
    let ns_token = iocx_server::auth::random_secret(18);
    let ns_v1 = iocx_server::auth::random_secret(18);
    let tv1_token = iocx_server::auth::random_secret(18);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ns_args = ns::Args {
        token: ns_token.clone(),
        v1_token: Some(ns_v1.clone()),
        alerts: 200,
        wait_time: 0,
        ..ns::Args::default()
    };
    let (ns_handle, _) = ns::start(listener, &ns_args).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mut tv1_args = tv1::Args::new(&tv1_token);
    tv1_args.objects = 150;
    let (tv1_handle, _) = tv1::start(listener, &tv1_args).await?;
    let (netskope_url, vision_one_url) = (ns_handle.base_url.clone(), tv1_handle.base_url.clone());
    let blocking_engine = engine.clone();
    let (ns_url, tv1_url) = (netskope_url.clone(), vision_one_url.clone());
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let store = &blocking_engine.store;
        let vault = &blocking_engine.vault;
        let (netskope_url, vision_one_url) = (ns_url, tv1_url);
        let change = |set: &[(&str, &str)], secrets: &[(&str, &str)], range: i64| ConfigChange {
            set: set.iter().map(|(k, v)| (k.to_string(), json!(v))).collect(),
            secrets: secrets
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            interval_secs: Some(60),
            initial_range_days: Some(range),
            ..ConfigChange::default()
        };
        configs::create(
            store,
            vault,
            "netskope",
            "netskope",
            &change(
                &[("tenant", &netskope_url)],
                &[("token", &ns_token), ("v1_token", &ns_v1)],
                90,
            ),
        )?;
        configs::create(
            store,
            vault,
            "vision-one",
            "trend_vision_one",
            &change(
                &[("base_url", &vision_one_url)],
                &[("token", &tv1_token)],
                365,
            ),
        )?;
        let rule = |expression: &str, description: &str| admin::RuleInput {
            expression: expression.into(),
            description: description.into(),
            ..admin::RuleInput::default()
        };
        admin::save_rule(
            store,
            "netskope-threats",
            &rule(
                "kind in (url, sha256) and source = netskope",
                "Malsite URLs and malware hashes Netskope alerted on",
            ),
        )?;
        admin::save_rule(
            store,
            "vision-one-web",
            &rule(
                "kind in (url, domain, ipv4) and source = vision-one and active",
                "Suspicious web objects from Trend Vision One",
            ),
        )?;
        admin::save_rule(
            store,
            "vision-one-hashes",
            &rule(
                "kind in (md5, sha256) and source = vision-one and active",
                "Suspicious file hashes from Trend Vision One",
            ),
        )?;
        Ok(())
    })
    .await
    .context("configuring the demo")??;
    // name, source, rule, destination, target, list name
    let sharings = [
        (
            "netskope-to-vision-one",
            "netskope",
            "netskope-threats",
            "vision-one",
            "suspicious_objects",
            None,
        ),
        (
            "vision-one-to-netskope",
            "vision-one",
            "vision-one-web",
            "netskope",
            "url_list",
            Some("iocx-from-vision-one"),
        ),
        (
            "vision-one-hashes-to-netskope",
            "vision-one",
            "vision-one-hashes",
            "netskope",
            "file_hash_list",
            Some("iocx-file-hashes"),
        ),
    ];
    // Sources exist once their configurations do; sharings name them.
    for (name, source, rule, destination, target, list) in sharings {
        let params: BTreeMap<String, serde_json::Value> = list
            .map(|l| ("list_name".to_string(), json!(l)))
            .into_iter()
            .collect();
        admin::save_sharing(
            engine,
            None,
            SharingSpec {
                name: name.into(),
                description: "Demo: the seeds' bi-directional sharing".into(),
                enabled: true,
                sources: vec![source.into()],
                rule: rule.into(),
                destination: destination.into(),
                target: target.into(),
                params: BTreeMap::new(),
                interval_secs: 300,
                after_pull: true,
            },
            admin::ParamInput::Json(params),
        )
        .await?;
    }
    Ok(Demo {
        netskope_url,
        vision_one_url,
        _handles: vec![ns_handle, tv1_handle],
    })
}

/// `iocx users …`.
#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// List users.
    List,
    /// Create a user; the password is read from IOCX_PASSWORD or stdin.
    Add {
        /// The login name.
        name: String,
        /// viewer, analyst or admin.
        #[arg(long, default_value = "viewer")]
        role: String,
    },
    /// Set a user's password (from IOCX_PASSWORD or stdin).
    Passwd {
        /// The user.
        name: String,
    },
    /// Change a user's role.
    Role {
        /// The user.
        name: String,
        /// viewer, analyst or admin.
        role: String,
    },
    /// Disable a user (logins and tokens refused).
    Disable {
        /// The user.
        name: String,
    },
    /// Enable a user again.
    Enable {
        /// The user.
        name: String,
    },
    /// Delete a user and their tokens.
    Delete {
        /// The user.
        name: String,
    },
}

/// `iocx tokens …`.
#[derive(Debug, clap::Subcommand)]
pub enum TokensCommand {
    /// List tokens (never the tokens themselves).
    List {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
    },
    /// Generate a token; it is printed once.
    Create {
        /// What it is for.
        name: String,
        /// The user it acts as.
        #[arg(long, default_value = "admin")]
        user: String,
        /// Its role (at most the user's; default the user's).
        #[arg(long)]
        role: Option<String>,
        /// Days until it expires (default: never).
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    /// Revoke a token by id.
    Revoke {
        /// The token's id (see `iocx tokens list`).
        id: i64,
    },
}

fn parse_role(text: &str) -> anyhow::Result<Role> {
    Role::parse(text).with_context(|| format!("role {text:?}: viewer, analyst or admin"))
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("IOCX_PASSWORD") {
        return Ok(p);
    }
    eprint!("password (12 characters or more): ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

fn audit(
    store: &iocx_store::Store,
    action: &str,
    target: &str,
    after: Option<serde_json::Value>,
) -> anyhow::Result<()> {
    store.audit(&NewAudit {
        actor: cli_actor(),
        action: action.into(),
        target: target.into(),
        before: None,
        after: after.map(|a| iocx_server::auth::mask(a).to_string()),
    })?;
    Ok(())
}

/// Runs `iocx users …`.
pub fn users(global: &Global, command: UsersCommand) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let hash = |p: String| {
        runtime
            .block_on(iocx_server::auth::hash_password(p))
            .map_err(|e| anyhow::anyhow!("{}: {}", e.field.unwrap_or_default(), e.message))
    };
    match command {
        UsersCommand::List => {
            let users = store.users()?;
            if global.json {
                print_json(&users)?;
            } else {
                for u in users {
                    println!(
                        "{:<24} {:<8}{}",
                        u.name,
                        u.role,
                        if u.disabled { " disabled" } else { "" }
                    );
                }
            }
        }
        UsersCommand::Add { name, role } => {
            let role = parse_role(&role)?;
            configs::check_name(&name).map_err(|e| anyhow::anyhow!("{}", e.message))?;
            let h = hash(read_password()?)?;
            let u = store.create_user(&name, &h, role)?;
            audit(&store, "user.create", &name, Some(json!(u)))?;
            println!("created user {name} ({role})");
        }
        UsersCommand::Passwd { name } => {
            let h = hash(read_password()?)?;
            store
                .update_user(&name, None, Some(&h), None)?
                .with_context(|| format!("no user called {name:?}"))?;
            audit(&store, "user.password", &name, None)?;
            println!("changed the password of {name}; their sessions ended");
        }
        UsersCommand::Role { name, role } => {
            let role = parse_role(&role)?;
            let u = store
                .update_user(&name, Some(role), None, None)?
                .with_context(|| format!("no user called {name:?}"))?;
            audit(&store, "user.update", &name, Some(json!(u)))?;
            println!("{name} is now {role}");
        }
        UsersCommand::Disable { name } => {
            store
                .update_user(&name, None, None, Some(true))?
                .with_context(|| format!("no user called {name:?}"))?;
            audit(&store, "user.disable", &name, None)?;
            println!("disabled {name}");
        }
        UsersCommand::Enable { name } => {
            store
                .update_user(&name, None, None, Some(false))?
                .with_context(|| format!("no user called {name:?}"))?;
            audit(&store, "user.enable", &name, None)?;
            println!("enabled {name}");
        }
        UsersCommand::Delete { name } => {
            if !store.delete_user(&name)? {
                anyhow::bail!("no user called {name:?}");
            }
            audit(&store, "user.delete", &name, None)?;
            println!("deleted {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `iocx tokens …`.
pub fn tokens(global: &Global, command: TokensCommand) -> anyhow::Result<ExitCode> {
    let engine = global.engine()?;
    let store = &engine.store;
    match command {
        TokensCommand::List { user } => {
            let tokens = store.tokens(user.as_deref())?;
            if global.json {
                print_json(&tokens)?;
            } else {
                for t in tokens {
                    let state = if t.revoked_at.is_some() {
                        "revoked".to_string()
                    } else if let Some(e) = t.expires_at {
                        if e <= Timestamp::now() {
                            "expired".into()
                        } else {
                            format!("expires {}", e.to_rfc3339())
                        }
                    } else {
                        "no expiry".into()
                    };
                    println!(
                        "{:>5}  {:<24} {:<12} {:<8} {}…  {state}",
                        t.id, t.name, t.user, t.role, t.prefix
                    );
                }
            }
        }
        TokensCommand::Create {
            name,
            user,
            role,
            expires_in_days,
        } => {
            let (u, _) = store
                .user(&user)?
                .with_context(|| format!("no user called {user:?}"))?;
            let role = match role {
                Some(r) => parse_role(&r)?,
                None => u.role,
            };
            if role > u.role {
                anyhow::bail!("--role {role}: more than {user}'s role ({})", u.role);
            }
            if expires_in_days.is_some_and(|d| !(1..=3650).contains(&d)) {
                anyhow::bail!("--expires-in-days: between 1 and 3650");
            }
            let token = format!("iocx_{}", iocx_server::auth::random_secret(32));
            let record = store.create_token(&iocx_store::NewToken {
                name: name.clone(),
                user: user.clone(),
                role,
                hash: engine.vault.keyed_hash("token", token.as_bytes()),
                prefix: token.chars().take(12).collect(),
                expires_at: expires_in_days.map(|d| Timestamp::now().plus_days(d)),
            })?;
            audit(store, "token.create", &name, Some(json!(record)))?;
            if global.json {
                print_json(&json!({"token": token, "record": record}))?;
            } else {
                println!("{token}");
                eprintln!(
                    "token {} ({role} as {user}) — shown once; store it now",
                    record.id
                );
            }
        }
        TokensCommand::Revoke { id } => {
            if !store.revoke_token(id, Timestamp::now())? {
                anyhow::bail!("no unrevoked token with id {id}");
            }
            audit(store, "token.revoke", &id.to_string(), None)?;
            println!("revoked token {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
