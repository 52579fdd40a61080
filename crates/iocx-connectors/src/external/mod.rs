//! `external`: a connector written in any language, run as a program that speaks JSON lines.
//!
//! For each operation iocx starts the program, writes one request line to its standard input
//! and closes it, then reads one JSON message per line from its standard output until it exits.
//! Standard error goes to the run log. The protocol is versioned ([`PROTOCOL`]) and written down
//! in `docs/external-protocol.md`; `examples/external/` holds a working plugin in Python.
//!
//! Design decisions:
//! - **One process per operation**: no state survives between calls except the checkpoint iocx
//!   stores, so a plugin that crashes loses nothing committed and cannot leak into the next run.
//! - **Pulls stream**: each `batch` line is committed with its checkpoint as it arrives; a pipe
//!   that fills while iocx writes blocks the program, so memory stays bounded by one line.
//! - **The environment is not inherited**: the program sees `PATH`, `HOME`, locale, temporary
//!   directory and proxy variables only — never iocx's master key or database address. Secrets
//!   travel in the request on standard input, never on the command line or in the environment,
//!   where other local users could read them.
//! - **Every way a program can misbehave is an error that says so**: cannot start, exits
//!   non-zero (with the last lines of its standard error), prints something that is not a
//!   protocol message (with the line number and its start), stays silent longer than its idle
//!   timeout, or answers the wrong number of results.

use std::collections::{BTreeMap, VecDeque};
use std::ops::ControlFlow;
use std::process::Stdio;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use iocx_model::Kind;
use iocx_model::feed::{FeedItem, FeedOptions, Position, read_value};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

use crate::spec::{
    Capabilities, Capacity, ConnectorSpec, Delivery, DeliveryMode, FieldKind, FieldSpec, TargetSpec,
};
use crate::webhook::WireItem;
use crate::{
    Connector, ConnectorError, Context, ErrorKind, ItemOutcome, LogLevel, PullBatch, PushItem,
    TargetCall, is_echo,
};

/// The protocol version iocx speaks. A program's `describe` answer must name it.
pub const PROTOCOL: u32 = 1;

/// The longest output line accepted, in bytes (one batch of a pull).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// The most log lines (its `log` messages and standard error together) one invocation may add
/// to the run log; the rest are counted and dropped.
const MAX_LOG_LINES: usize = 1_000;

/// How long a program may take to exit after closing its output.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// Variables passed on from iocx's environment; everything else is withheld.
const PASSED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SYSTEMROOT",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// The `external` connector.
pub struct External;

static SPEC: LazyLock<ConnectorSpec> = LazyLock::new(|| ConnectorSpec {
    name: "external".into(),
    title: "External program".into(),
    description: "Runs a program of yours — in any language — that pulls and pushes indicators, \
                  speaking JSON lines over standard input and output (docs/external-protocol.md)."
        .into(),
    fields: vec![
        FieldSpec::new(
            "command",
            "Command",
            FieldKind::Text {
                max_len: Some(4096),
            },
            "The program to run: a path, or a name looked up on PATH (python3, /opt/plugins/x).",
        )
        .required(),
        FieldSpec::new(
            "arguments",
            "Arguments",
            FieldKind::Text {
                max_len: Some(4096),
            },
            "Arguments, split on spaces; \"double quotes\" keep spaces. No shell is involved.",
        ),
        FieldSpec::new(
            "options",
            "Options (JSON)",
            FieldKind::Textarea,
            "A JSON object handed to the program as `options` with every request.",
        ),
        FieldSpec::new(
            "secret",
            "Secret",
            FieldKind::Secret,
            "Handed to the program as `secret` on standard input (an API key, a password).",
        ),
        FieldSpec::new(
            "idle_timeout_secs",
            "Idle timeout (seconds)",
            FieldKind::integer(1, 86_400),
            "A program that prints nothing for this long is stopped and the run fails.",
        )
        .default_value(300),
    ],
    capabilities: Capabilities {
        pull: true,
        push: true,
        retract: true,
        sightings: false,
    },
    targets: Vec::new(),
});

/// A program's answer to `describe`.
#[derive(Debug, Clone, Deserialize)]
pub struct Description {
    /// The protocol version it speaks.
    pub protocol: u32,
    /// Its title.
    #[serde(default)]
    pub title: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// What it can do.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Its push targets.
    #[serde(default)]
    pub targets: Vec<WireTarget>,
}

/// A push target as a program declares it; omitted traits take the defaults shown.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireTarget {
    /// The stored name (`[a-z0-9_]+`).
    pub name: String,
    /// The label (default: the name).
    #[serde(default)]
    pub label: Option<String>,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// Its parameters, set per sharing.
    #[serde(default)]
    pub fields: Vec<FieldSpec>,
    /// Kinds it takes (default: all).
    #[serde(default)]
    pub kinds: Option<Vec<Kind>>,
    /// Items per request (default 500, at most 100,000).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Bytes per request, when limited.
    #[serde(default)]
    pub byte_budget: Option<usize>,
    /// `incremental` (default) or `full_state`.
    #[serde(default)]
    pub mode: Option<DeliveryMode>,
    /// Total capacity.
    #[serde(default)]
    pub capacity: Option<Capacity>,
    /// Whether it supports `retract` (default false).
    #[serde(default)]
    pub removal: bool,
    /// Whether a `deploy` request follows pushes (default false).
    #[serde(default)]
    pub deploy: bool,
}

impl WireTarget {
    fn into_spec(self) -> Result<TargetSpec, String> {
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(format!(
                "target name {:?} must be 1-64 characters of a-z, 0-9 and _",
                self.name
            ));
        }
        let batch_size = self.batch_size.unwrap_or(500);
        if !(1..=100_000).contains(&batch_size) {
            return Err(format!(
                "target {}: batch_size {batch_size} is outside 1-100000",
                self.name
            ));
        }
        Ok(TargetSpec {
            label: self.label.unwrap_or_else(|| self.name.clone()),
            name: self.name,
            description: self.description,
            fields: self.fields,
            delivery: Delivery {
                mode: self.mode.unwrap_or(DeliveryMode::Incremental),
                batch_size,
                byte_budget: self.byte_budget,
                kinds: self.kinds.unwrap_or_else(|| Kind::ALL.to_vec()),
                capacity: self.capacity.unwrap_or_default(),
                removal: self.removal,
                deploy: self.deploy,
            },
        })
    }
}

/// One line a program prints.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Message {
    Log {
        #[serde(default = "info")]
        level: LogLevel,
        message: String,
    },
    Describe(Description),
    Ok {
        #[serde(default)]
        message: Option<String>,
    },
    Batch {
        #[serde(default)]
        records: Vec<Value>,
        #[serde(default)]
        checkpoint: Option<Value>,
        #[serde(default)]
        snapshot_complete: bool,
    },
    Results {
        results: Vec<WireOutcome>,
    },
    Error {
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        status: Option<u16>,
        message: String,
    },
    Done {},
}

fn info() -> LogLevel {
    LogLevel::Info
}

impl Message {
    fn name(&self) -> &'static str {
        match self {
            Message::Log { .. } => "log",
            Message::Describe(_) => "describe",
            Message::Ok { .. } => "ok",
            Message::Batch { .. } => "batch",
            Message::Results { .. } => "results",
            Message::Error { .. } => "error",
            Message::Done {} => "done",
        }
    }
}

#[derive(Debug, Deserialize)]
struct WireOutcome {
    state: String,
    #[serde(default)]
    reason: Option<String>,
}

impl WireOutcome {
    fn outcome(self, index: usize) -> Result<ItemOutcome, ConnectorError> {
        let reason = self.reason.unwrap_or_default();
        match self.state.as_str() {
            "shared" => Ok(ItemOutcome::Shared),
            "failed" => Ok(ItemOutcome::Failed(if reason.is_empty() {
                "refused by the program".into()
            } else {
                reason
            })),
            "skipped" => Ok(ItemOutcome::Skipped(if reason.is_empty() {
                "skipped by the program".into()
            } else {
                reason
            })),
            other => Err(ConnectorError::protocol(format!(
                "result {}: state {other:?} is not shared, failed or skipped",
                index + 1
            ))),
        }
    }
}

/// Splits an argument string on spaces; double quotes keep spaces, `\"` is a quote.
fn split_arguments(text: &str) -> Result<Vec<String>, ConnectorError> {
    let mut out = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut any) = (false, false);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => match chars.next() {
                Some(n) => current.push(n),
                None => current.push('\\'),
            },
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any || !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                    any = false;
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(ConnectorError::config(
            "arguments: a double quote is not closed",
        ));
    }
    if any || !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

/// A running program and what it has printed so far.
struct Plugin {
    child: Child,
    program: String,
    lines: FramedRead<ChildStdout, LinesCodec>,
    line_no: u64,
    stderr: tokio::task::JoinHandle<VecDeque<String>>,
    idle: Duration,
    logged: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Builds the request line for `op`.
fn request(ctx: &Context, op: &str, extra: Value) -> Result<Vec<u8>, ConnectorError> {
    let options = match ctx.values.text("options") {
        None => Value::Object(Default::default()),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return Err(ConnectorError::config("options must be a JSON object")),
            Err(e) => {
                return Err(ConnectorError::config(format!(
                    "options is not valid JSON: {e}"
                )));
            }
        },
    };
    let mut request = json!({
        "protocol": PROTOCOL,
        "op": op,
        "configuration": ctx.configuration,
        "options": options,
        "secret": ctx.values.text("secret"),
        "settings": {
            "initial_range_days": ctx.settings.initial_range_days,
            "verify_tls": ctx.settings.verify_tls,
            "proxy": ctx.settings.proxy,
            "timeout_secs": ctx.settings.timeout.as_secs(),
        },
        "marker": ctx.marker(),
    });
    if let (Value::Object(r), Value::Object(e)) = (&mut request, extra) {
        r.extend(e);
    }
    let mut line = serde_json::to_vec(&request)
        .map_err(|e| ConnectorError::protocol(format!("encoding the request: {e}")))?;
    line.push(b'\n');
    Ok(line)
}

impl Plugin {
    /// Starts the program for `op` and hands it the request.
    async fn start(ctx: &Context, op: &str, extra: Value) -> Result<Plugin, ConnectorError> {
        let program = ctx
            .values
            .text("command")
            .ok_or_else(|| ConnectorError::config("command is not set"))?
            .to_string();
        let arguments = split_arguments(ctx.values.text("arguments").unwrap_or(""))?;
        let line = request(ctx, op, extra)?;
        let idle = Duration::from_secs(
            ctx.values
                .integer("idle_timeout_secs")
                .unwrap_or(300)
                .clamp(1, 86_400) as u64,
        );
        let mut command = Command::new(&program);
        command
            .args(&arguments)
            .env_clear()
            .envs(
                PASSED_ENV
                    .iter()
                    .filter_map(|k| Some((k, std::env::var(k).ok()?))),
            )
            .env("IOCX_PROTOCOL", PROTOCOL.to_string())
            .env("IOCX_CONFIGURATION", &ctx.configuration)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(proxy) = &ctx.settings.proxy {
            for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
                command.env(k, proxy);
            }
        }
        let mut child = command
            .spawn()
            .map_err(|e| ConnectorError::config(format!("cannot start {program:?}: {e}")))?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(ConnectorError::protocol(format!(
                "{program}: its standard streams could not be opened"
            )));
        };
        // A program that exits without reading its request makes this fail with a broken pipe;
        // its exit status then tells what happened.
        if stdin.write_all(&line).await.is_ok() {
            let _ = stdin.shutdown().await;
        }
        drop(stdin);
        let logged = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stderr = {
            let (ctx, logged, program) = (ctx.clone(), logged.clone(), program.clone());
            tokio::spawn(async move {
                let mut tail = VecDeque::new();
                let mut lines = BufReader::new(stderr).split(b'\n');
                while let Ok(Some(raw)) = lines.next_segment().await {
                    let text: String = String::from_utf8_lossy(&raw)
                        .trim_end()
                        .chars()
                        .take(2_000)
                        .collect();
                    if text.is_empty() {
                        continue;
                    }
                    if logged.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < MAX_LOG_LINES {
                        ctx.warn(format!("{program} (stderr): {text}"));
                    }
                    if tail.len() == 5 {
                        tail.pop_front();
                    }
                    tail.push_back(ctx.http.redact(&text));
                }
                tail
            })
        };
        Ok(Plugin {
            child,
            program,
            lines: FramedRead::new(stdout, LinesCodec::new_with_max_length(MAX_LINE)),
            line_no: 0,
            stderr,
            idle,
            logged,
        })
    }

    /// The next protocol message other than a log line (logs go to the run log); `None` when
    /// the program closed its output.
    async fn next(&mut self, ctx: &Context) -> Result<Option<Message>, ConnectorError> {
        loop {
            let line = tokio::select! {
                _ = ctx.cancel.cancelled() => {
                    let _ = self.child.start_kill();
                    return Err(ConnectorError::new(ErrorKind::Cancelled, "the run was stopped"));
                }
                r = tokio::time::timeout(self.idle, self.lines.next()) => r,
            };
            let line = match line {
                Err(_) => {
                    let _ = self.child.start_kill();
                    return Err(ConnectorError::new(
                        ErrorKind::Network,
                        format!(
                            "{} printed nothing for {} s (the idle timeout); it was stopped",
                            self.program,
                            self.idle.as_secs()
                        ),
                    ));
                }
                Ok(None) => return Ok(None),
                Ok(Some(Err(LinesCodecError::MaxLineLengthExceeded))) => {
                    let _ = self.child.start_kill();
                    return Err(ConnectorError::protocol(format!(
                        "{}: output line {} is longer than {} MiB; send smaller batches",
                        self.program,
                        self.line_no + 1,
                        MAX_LINE >> 20
                    )));
                }
                Ok(Some(Err(LinesCodecError::Io(e)))) => {
                    let _ = self.child.start_kill();
                    return Err(ConnectorError::protocol(format!(
                        "{}: reading its output after line {}: {e}",
                        self.program, self.line_no
                    )));
                }
                Ok(Some(Ok(line))) => line,
            };
            self.line_no += 1;
            if line.trim().is_empty() {
                continue;
            }
            let message = match serde_json::from_str::<Message>(&line) {
                Ok(m) => m,
                Err(e) => {
                    let _ = self.child.start_kill();
                    let start: String = line.chars().take(120).collect();
                    return Err(ConnectorError::protocol(format!(
                        "{}: output line {} is not a protocol message ({e}); it starts: {}",
                        self.program,
                        self.line_no,
                        ctx.http.redact(&start)
                    )));
                }
            };
            match message {
                Message::Log { level, message } => {
                    let n = self
                        .logged
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n < MAX_LOG_LINES {
                        let message = ctx.http.redact(&message);
                        ctx.log.log(level, &format!("{}: {message}", self.program));
                    }
                }
                Message::Error {
                    kind,
                    status,
                    message,
                } => {
                    let _ = self.child.start_kill();
                    let kind = match (kind.as_deref(), status) {
                        (_, Some(s)) => ErrorKind::Status(s),
                        (Some("auth"), _) => ErrorKind::Auth,
                        (Some("config"), _) => ErrorKind::Config,
                        (Some("network"), _) => ErrorKind::Network,
                        (Some("unsupported"), _) => ErrorKind::Unsupported,
                        _ => ErrorKind::Protocol,
                    };
                    return Err(ConnectorError::new(
                        kind,
                        format!("{}: {}", self.program, ctx.http.redact(&message)),
                    ));
                }
                other => return Ok(Some(other)),
            }
        }
    }

    /// Waits for the program to exit; an exit status other than 0 is an error carrying the last
    /// lines of its standard error.
    async fn finish(mut self) -> Result<(), ConnectorError> {
        let status = match tokio::time::timeout(EXIT_GRACE, self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => {
                return Err(ConnectorError::protocol(format!(
                    "{}: waiting for it to exit: {e}",
                    self.program
                )));
            }
            Err(_) => {
                let _ = self.child.kill().await;
                return Err(ConnectorError::protocol(format!(
                    "{} closed its output but did not exit within {} s; it was stopped",
                    self.program,
                    EXIT_GRACE.as_secs()
                )));
            }
        };
        let tail = self.stderr.await.unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        let how = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_string(),
        };
        let tail: Vec<String> = tail.into_iter().collect();
        Err(ConnectorError::protocol(if tail.is_empty() {
            format!("{} {how}", self.program)
        } else {
            format!("{} {how}; it said: {}", self.program, tail.join(" | "))
        }))
    }

    /// Reads to the end expecting one message accepted by `want`, then waits for the exit.
    async fn answer<T>(
        mut self,
        ctx: &Context,
        op: &str,
        want: impl Fn(Message) -> Result<T, Message>,
    ) -> Result<T, ConnectorError> {
        let mut answer = None;
        while let Some(message) = self.next(ctx).await? {
            if matches!(message, Message::Done {}) {
                continue;
            }
            if answer.is_some() {
                return Err(ConnectorError::protocol(format!(
                    "{}: a second answer ({}) to {op}",
                    self.program,
                    message.name()
                )));
            }
            match want(message) {
                Ok(t) => answer = Some(t),
                Err(other) => {
                    return Err(ConnectorError::protocol(format!(
                        "{}: a `{}` message is not an answer to {op}",
                        self.program,
                        other.name()
                    )));
                }
            }
        }
        let program = self.program.clone();
        self.finish().await?;
        answer.ok_or_else(|| {
            ConnectorError::protocol(format!("{program} exited without answering {op}"))
        })
    }
}

/// Asks the program to describe itself and checks the protocol version.
///
/// # Errors
/// When the program fails or speaks another protocol.
pub async fn describe(ctx: &Context) -> Result<Description, ConnectorError> {
    let plugin = Plugin::start(ctx, "describe", json!({})).await?;
    let program = plugin.program.clone();
    let d = plugin
        .answer(ctx, "describe", |m| match m {
            Message::Describe(d) => Ok(d),
            other => Err(other),
        })
        .await?;
    if d.protocol != PROTOCOL {
        return Err(ConnectorError::config(format!(
            "{program} speaks protocol {}; this iocx speaks protocol {PROTOCOL}",
            d.protocol
        )));
    }
    Ok(d)
}

async fn deliver(
    ctx: &Context,
    op: &str,
    call: &TargetCall,
    items: &[PushItem],
) -> Result<Vec<ItemOutcome>, ConnectorError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let extra = json!({
        "target": {
            "name": call.target,
            "params": call.params.public_part(),
            "sharing": call.sharing,
            "batch": call.batch,
        },
        "items": items.iter().map(WireItem::from).collect::<Vec<_>>(),
    });
    let plugin = Plugin::start(ctx, op, extra).await?;
    let program = plugin.program.clone();
    let results = plugin
        .answer(ctx, op, |m| match m {
            Message::Results { results } => Ok(results),
            other => Err(other),
        })
        .await?;
    if results.len() != items.len() {
        return Err(ConnectorError::protocol(format!(
            "{program} answered {} results for {} items",
            results.len(),
            items.len()
        )));
    }
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.outcome(i))
        .collect()
}

/// Turns one batch's records into records and rejections; logs the first rejections.
fn records(
    ctx: &Context,
    batch_no: u64,
    raw: Vec<Value>,
    logged: &mut usize,
) -> (Vec<iocx_model::Record>, BTreeMap<String, u64>) {
    let options = FeedOptions::default();
    let mut out = Vec::with_capacity(raw.len());
    let mut rejected = BTreeMap::<String, u64>::new();
    for (i, value) in raw.iter().enumerate() {
        let hits = value.get("hits").and_then(Value::as_u64);
        let echo = value.get("echo").and_then(Value::as_bool).unwrap_or(false);
        let _ = read_value(Position::Item(i as u64 + 1), value, &options, &mut |item| {
            match item {
                FeedItem::Record(_, mut record) => {
                    if let Some(h) = hits {
                        record.hits = h;
                    }
                    record.echo = echo || record.attributes.comment.as_deref().is_some_and(is_echo);
                    out.push(record);
                }
                FeedItem::Reject(r) => {
                    *rejected.entry(r.reason.to_string()).or_default() += 1;
                    if *logged < 20 {
                        *logged += 1;
                        ctx.warn(format!("batch {batch_no}, record {}: {}", i + 1, r.message));
                    }
                }
            }
            ControlFlow::Continue(())
        });
    }
    (out, rejected)
}

struct PullState<'a> {
    ctx: &'a Context,
    start: Option<Option<Value>>,
    plugin: Option<Plugin>,
    checkpoint: Value,
    batches: u64,
    rejections_logged: usize,
}

#[async_trait]
impl Connector for External {
    fn spec(&self) -> &ConnectorSpec {
        &SPEC
    }

    async fn validate(&self, ctx: &Context) -> Result<String, ConnectorError> {
        let d = describe(ctx).await?;
        let plugin = Plugin::start(ctx, "validate", json!({})).await?;
        let message = plugin
            .answer(ctx, "validate", |m| match m {
                Message::Ok { message } => Ok(message),
                other => Err(other),
            })
            .await?;
        let title = if d.title.is_empty() {
            "the program".to_string()
        } else {
            d.title
        };
        Ok(match message {
            Some(m) => format!("{title}: {m}"),
            None => format!("{title} accepted the configuration"),
        })
    }

    fn pull<'a>(
        &'a self,
        ctx: &'a Context,
        checkpoint: Option<Value>,
    ) -> BoxStream<'a, Result<PullBatch, ConnectorError>> {
        let state = PullState {
            ctx,
            checkpoint: checkpoint.clone().unwrap_or(Value::Null),
            start: Some(checkpoint),
            plugin: None,
            batches: 0,
            rejections_logged: 0,
        };
        Box::pin(futures::stream::try_unfold(state, |mut st| async move {
            if let Some(checkpoint) = st.start.take() {
                let extra = json!({
                    "checkpoint": checkpoint,
                    "last_success": st.ctx.last_success,
                    "initial_start": st.ctx.initial_start(),
                });
                st.plugin = Some(Plugin::start(st.ctx, "pull", extra).await?);
            }
            let Some(plugin) = st.plugin.as_mut() else {
                return Ok(None);
            };
            let message = plugin.next(st.ctx).await?;
            let program = plugin.program.clone();
            match message {
                None | Some(Message::Done {}) => {
                    if let Some(p) = st.plugin.take() {
                        p.finish().await?;
                    }
                    Ok(None)
                }
                Some(Message::Batch {
                    records: raw,
                    checkpoint,
                    snapshot_complete,
                }) => {
                    st.batches += 1;
                    if let Some(c) = checkpoint {
                        st.checkpoint = c;
                    }
                    let (records, rejected) =
                        records(st.ctx, st.batches, raw, &mut st.rejections_logged);
                    let batch = PullBatch {
                        records,
                        checkpoint: st.checkpoint.clone(),
                        snapshot_complete,
                        rejected,
                    };
                    Ok(Some((batch, st)))
                }
                Some(other) => Err(ConnectorError::protocol(format!(
                    "{program}: a `{}` message during a pull",
                    other.name()
                ))),
            }
        }))
    }

    async fn targets(&self, ctx: &Context) -> Result<Vec<TargetSpec>, ConnectorError> {
        let d = describe(ctx).await?;
        d.targets
            .into_iter()
            .map(|t| t.into_spec().map_err(ConnectorError::protocol))
            .collect()
    }

    async fn push(
        &self,
        ctx: &Context,
        target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        deliver(ctx, "push", target, items).await
    }

    async fn retract(
        &self,
        ctx: &Context,
        target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        deliver(ctx, "retract", target, items).await
    }

    async fn deploy(&self, ctx: &Context, target: &TargetCall) -> Result<(), ConnectorError> {
        let extra = json!({
            "target": {
                "name": target.target,
                "params": target.params.public_part(),
                "sharing": target.sharing,
                "batch": target.batch,
            },
        });
        let plugin = Plugin::start(ctx, "deploy", extra).await?;
        plugin
            .answer(ctx, "deploy", |m| match m {
                Message::Ok { .. } => Ok(()),
                other => Err(other),
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_on_spaces_and_keep_quoted_ones() {
        let args =
            split_arguments(r#"plugin.py --name "two words" "" x\y "a \"q\"""#).expect("valid");
        assert_eq!(
            args,
            vec!["plugin.py", "--name", "two words", "", r"x\y", r#"a "q""#]
        );
        assert!(split_arguments("\"open").is_err());
        assert!(split_arguments("   ").expect("valid").is_empty());
    }

    #[test]
    fn targets_take_defaults_and_refuse_bad_names() {
        let t: WireTarget = serde_json::from_value(json!({"name": "blocklist"})).expect("parses");
        let spec = t.into_spec().expect("valid");
        assert_eq!(spec.label, "blocklist");
        assert_eq!(spec.delivery.batch_size, 500);
        assert_eq!(spec.delivery.kinds.len(), Kind::ALL.len());
        let t: WireTarget = serde_json::from_value(json!({"name": "Block List"})).expect("parses");
        assert!(t.into_spec().is_err());
        let t: WireTarget =
            serde_json::from_value(json!({"name": "x", "batch_size": 0})).expect("parses");
        assert!(t.into_spec().is_err());
        assert!(
            serde_json::from_value::<WireTarget>(json!({"name": "x", "batchsize": 5})).is_err()
        );
    }

    #[test]
    fn outcomes_name_their_state() {
        let o: WireOutcome = serde_json::from_value(json!({"state": "failed"})).expect("parses");
        assert_eq!(
            o.outcome(0).expect("valid"),
            ItemOutcome::Failed("refused by the program".into())
        );
        let o: WireOutcome = serde_json::from_value(json!({"state": "maybe"})).expect("parses");
        assert!(o.outcome(2).unwrap_err().message.contains("result 3"));
    }
}
