//! Opening a feed: an HTTP(S) `GET` with authentication and conditional headers, or a local
//! file. What comes back is a blocking reader for the feed readers, plus the validators that
//! identify the content.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt as _;
use reqwest::header::{HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;

use super::checkpoint::Checkpoint;
use crate::http::DefaultRetry;
use crate::{ConnectorError, Context, ErrorKind};

/// The total time one feed download may take. Stalls are caught sooner: the shared client's
/// read timeout (the configuration's request timeout) applies to every read.
const DOWNLOAD_LIMIT: Duration = Duration::from_secs(6 * 3600);

/// Where a feed comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An `http://` or `https://` URL.
    Http(String),
    /// A local file (`file://` URL or a path).
    File(PathBuf),
}

impl Location {
    /// Parses the configured URL or path.
    ///
    /// # Errors
    /// When it is neither an http(s) URL, a `file://` URL nor a path.
    pub fn parse(text: &str) -> Result<Location, ConnectorError> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let url = url::Url::parse(text)
                .map_err(|e| ConnectorError::config(format!("url: {e}: {}", shown(text))))?;
            return Ok(Location::Http(url.to_string()));
        }
        if lower.starts_with("file:") {
            let url = url::Url::parse(text)
                .map_err(|e| ConnectorError::config(format!("url: {e}: {text}")))?;
            let path = url.to_file_path().map_err(|()| {
                ConnectorError::config(format!(
                    "url: {text} is not a local file (write file:///absolute/path)"
                ))
            })?;
            return Ok(Location::File(path));
        }
        if text.contains("://") {
            return Err(ConnectorError::config(format!(
                "url: {} is not http://, https:// or file://",
                shown(text)
            )));
        }
        if text.is_empty() {
            return Err(ConnectorError::config("url: empty"));
        }
        Ok(Location::File(PathBuf::from(text)))
    }

    /// How the location is named in messages: an URL without its query string (where API keys
    /// often travel), or the path.
    pub fn shown(&self) -> String {
        match self {
            Location::Http(url) => shown(url),
            Location::File(path) => path.display().to_string(),
        }
    }

    /// The last part of the path, a hint for format detection.
    pub fn file_name(&self) -> Option<String> {
        match self {
            Location::Http(url) => url::Url::parse(url)
                .ok()?
                .path_segments()?
                .next_back()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            Location::File(path) => Some(path.file_name()?.to_string_lossy().into_owned()),
        }
    }
}

/// `url` without its query string and fragment.
fn shown(url: &str) -> String {
    match url.find(['?', '#']) {
        Some(i) => format!("{}?…", &url[..i]),
        None => url.to_string(),
    }
}

/// How requests to the feed authenticate.
#[derive(Clone, Default)]
pub enum Auth {
    /// No authentication.
    #[default]
    None,
    /// `Authorization: Bearer TOKEN`.
    Bearer(String),
    /// HTTP basic authentication.
    Basic(String, String),
    /// A header of the user's choosing (`X-API-Key: …`).
    Header(HeaderName, HeaderValue),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "None",
            Auth::Bearer(_) => "Bearer(***)",
            Auth::Basic(..) => "Basic(***)",
            Auth::Header(..) => "Header(***)",
        })
    }
}

impl Auth {
    /// The authentication the configuration asks for.
    ///
    /// # Errors
    /// When a value it needs is missing or unusable; the message names the field, never the
    /// secret.
    pub fn from_context(ctx: &Context) -> Result<Auth, ConnectorError> {
        let v = &ctx.values;
        let need = |key: &str, what: &str| {
            v.text(key).map(str::to_string).ok_or_else(|| {
                ConnectorError::config(format!("{key}: required for {what} authentication"))
            })
        };
        Ok(match v.text("auth").unwrap_or("none") {
            "none" => Auth::None,
            "bearer" => Auth::Bearer(need("token", "bearer token")?),
            "basic" => Auth::Basic(
                need("username", "user and password")?,
                need("password", "user and password")?,
            ),
            "header" => {
                let name = need("header_name", "custom header")?;
                let value = need("header_value", "custom header")?;
                let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                    ConnectorError::config(format!(
                        "header_name: {name:?} is not a valid HTTP header name"
                    ))
                })?;
                let mut value = HeaderValue::from_str(&value).map_err(|_| {
                    ConnectorError::config(
                        "header_value: holds characters an HTTP header cannot carry",
                    )
                })?;
                value.set_sensitive(true);
                Auth::Header(name, value)
            }
            other => {
                return Err(ConnectorError::config(format!(
                    "auth: unknown method {other:?}; use none, bearer, basic or header"
                )));
            }
        })
    }

    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic(user, password) => request.basic_auth(user, Some(password)),
            Auth::Header(name, value) => request.header(name.clone(), value.clone()),
        }
    }
}

/// An opened feed.
pub enum Opened {
    /// The server answered `304 Not Modified`, or the content provably is what the last
    /// finished pull read.
    Unchanged(String),
    /// Content to read.
    Content(Content),
}

/// Content to read, with what identifies it.
pub struct Content {
    /// The body, for a blocking thread (HTTP bodies are bridged from the async client).
    pub reader: Box<dyn Read + Send>,
    /// The validators of this content (`position` unset).
    pub validators: Checkpoint,
    /// The `Content-Type`, if any.
    pub content_type: Option<String>,
}

/// Opens the feed at `location`. `previous` is the stored checkpoint: a finished pull's
/// validators make the request conditional.
///
/// # Errors
/// When the file cannot be read, the server cannot be reached after retries, or it answers an
/// error status or an HTML page; each message names the location and what came back.
pub async fn open(
    ctx: &Context,
    location: &Location,
    auth: &Auth,
    previous: &Checkpoint,
    max_bytes: u64,
    cancel: &CancellationToken,
) -> Result<Opened, ConnectorError> {
    match location {
        Location::File(path) => open_file(path, previous, max_bytes),
        Location::Http(url) => open_http(ctx, url, auth, previous, max_bytes, cancel).await,
    }
}

/// A file's identity: its size and modification time.
pub fn file_identity(path: &Path) -> Result<(String, u64), ConnectorError> {
    let meta = std::fs::metadata(path).map_err(|e| file_error(path, &e))?;
    if meta.is_dir() {
        return Err(ConnectorError::config(format!(
            "{} is a directory, not a feed file",
            path.display()
        )));
    }
    let modified = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok((format!("{}:{modified}", meta.len()), meta.len()))
}

fn file_error(path: &Path, e: &std::io::Error) -> ConnectorError {
    let kind = if e.kind() == std::io::ErrorKind::PermissionDenied {
        ErrorKind::Auth
    } else {
        ErrorKind::Config
    };
    ConnectorError::new(kind, format!("cannot read {}: {e}", path.display()))
}

fn open_file(path: &Path, previous: &Checkpoint, max_bytes: u64) -> Result<Opened, ConnectorError> {
    let (identity, len) = file_identity(path)?;
    let validators = Checkpoint {
        identity: Some(identity),
        ..Checkpoint::default()
    };
    if validators.unchanged_since(previous) {
        return Ok(Opened::Unchanged(format!(
            "{} has not changed since the last pull",
            path.display()
        )));
    }
    if len > max_bytes {
        return Err(too_large(&path.display().to_string(), len, max_bytes));
    }
    let file = std::fs::File::open(path).map_err(|e| file_error(path, &e))?;
    Ok(Opened::Content(Content {
        reader: Box::new(file),
        validators,
        content_type: None,
    }))
}

/// The error for content over the size limit.
pub fn too_large(shown: &str, len: u64, max_bytes: u64) -> ConnectorError {
    ConnectorError::config(format!(
        "{shown} is {} MB, more than the {} MB the configuration allows (max_size_mb)",
        len.div_ceil(1 << 20),
        max_bytes >> 20
    ))
}

/// Builds the `GET`: authentication, and validators when `conditional`.
fn request(
    client: &reqwest::Client,
    url: &str,
    auth: &Auth,
    conditional: Option<&Checkpoint>,
) -> reqwest::RequestBuilder {
    let mut r = client.get(url).timeout(DOWNLOAD_LIMIT).header(
        reqwest::header::ACCEPT,
        "text/plain, text/csv, application/json, application/stix+json;version=2.1, */*;q=0.5",
    );
    r = auth.apply(r);
    if let Some(c) = conditional {
        if let Some(e) = &c.etag {
            r = r.header(reqwest::header::IF_NONE_MATCH, e);
        }
        if let Some(m) = &c.last_modified {
            r = r.header(reqwest::header::IF_MODIFIED_SINCE, m);
        }
    }
    r
}

/// Sends the `GET` and checks what came back, without reading the body.
pub async fn get(
    ctx: &Context,
    url: &str,
    auth: &Auth,
    conditional: Option<&Checkpoint>,
) -> Result<reqwest::Response, ConnectorError> {
    let what = format!("GET {}", shown(url));
    let response = ctx
        .http
        .send(&what, &DefaultRetry, |c| request(c, url, auth, conditional))
        .await?;
    if response.status() == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(response);
    }
    let response = ctx.http.check(&what, response).await?;
    let content_type = header(&response, reqwest::header::CONTENT_TYPE);
    if let Some(ct) = content_type.as_deref().filter(|ct| is_markup_type(ct)) {
        let start = first_bytes(response, 300).await;
        return Err(ConnectorError::protocol(ctx.http.redact(&format!(
            "{} answered an HTML page ({ct}), not a feed — a login page, a captcha or an error \
             page? It starts: {}",
            shown(url),
            one_line(&start)
        ))));
    }
    Ok(response)
}

async fn open_http(
    ctx: &Context,
    url: &str,
    auth: &Auth,
    previous: &Checkpoint,
    max_bytes: u64,
    cancel: &CancellationToken,
) -> Result<Opened, ConnectorError> {
    // Ask "has it changed?" only after a finished read; a resumed read needs the body.
    let conditional = previous.position.is_none().then_some(previous);
    let response = get(ctx, url, auth, conditional).await?;
    if response.status() == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Opened::Unchanged(format!(
            "{} has not changed since the last pull (HTTP 304)",
            shown(url)
        )));
    }
    let validators = Checkpoint {
        etag: header(&response, reqwest::header::ETAG),
        last_modified: header(&response, reqwest::header::LAST_MODIFIED),
        ..Checkpoint::default()
    };
    if validators.unchanged_since(previous) {
        return Ok(Opened::Unchanged(format!(
            "{} has not changed since the last pull (same ETag)",
            shown(url)
        )));
    }
    // With Content-Encoding the length is that of the compressed body; the reader enforces the
    // limit on what it decompresses.
    let encoded = response
        .headers()
        .contains_key(reqwest::header::CONTENT_ENCODING);
    let length = response.content_length();
    if let Some(len) = length.filter(|l| !encoded && *l > max_bytes) {
        return Err(too_large(&shown(url), len, max_bytes));
    }
    let content_type = header(&response, reqwest::header::CONTENT_TYPE);
    let body = cancellable(response, cancel.clone());
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(body));
    Ok(Opened::Content(Content {
        reader: Box::new(reader),
        validators,
        content_type,
    }))
}

/// The body as a stream of chunks that ends with an error (never a silent end, which would
/// look like a complete feed) when `cancel` fires.
fn cancellable(
    response: reqwest::Response,
    cancel: CancellationToken,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + Unpin + 'static {
    let body = response.bytes_stream();
    Box::pin(futures::stream::unfold(
        (body, cancel, false),
        |(mut body, cancel, done)| async move {
            if done {
                return None;
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => Some((
                    Err(std::io::Error::other("the pull was stopped")),
                    (body, cancel, true),
                )),
                item = body.next() => match item {
                    None => None,
                    Some(Ok(chunk)) => Some((Ok(chunk), (body, cancel, false))),
                    Some(Err(e)) => Some((
                        Err(std::io::Error::other(error_text(&e))),
                        (body, cancel, true),
                    )),
                },
            }
        },
    ))
}

/// An error with its causes, as one line.
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn header(response: &reqwest::Response, name: HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Whether a content type is a web page rather than data.
fn is_markup_type(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.starts_with("text/html") || ct.starts_with("application/xhtml")
}

/// Up to `n` bytes of the body.
pub async fn first_bytes_raw(response: reqwest::Response, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut body = response.bytes_stream();
    while out.len() < n {
        match body.next().await {
            Some(Ok(chunk)) => out.extend_from_slice(&chunk),
            _ => break,
        }
    }
    out.truncate(n);
    out
}

/// Up to `n` bytes of the body, as text.
pub async fn first_bytes(response: reqwest::Response, n: usize) -> String {
    String::from_utf8_lossy(&first_bytes_raw(response, n).await).into_owned()
}

/// Text squeezed onto one line for a message.
pub fn one_line(text: &str) -> String {
    let squeezed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    squeezed.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_urls_files_or_paths() {
        assert_eq!(
            Location::parse("https://x.example/a.txt?key=1").unwrap(),
            Location::Http("https://x.example/a.txt?key=1".into())
        );
        assert_eq!(
            Location::parse("file:///tmp/feed%20a.txt").unwrap(),
            Location::File(PathBuf::from("/tmp/feed a.txt"))
        );
        assert_eq!(
            Location::parse("/srv/feeds/a.csv").unwrap(),
            Location::File(PathBuf::from("/srv/feeds/a.csv"))
        );
        assert!(Location::parse("ftp://x.example/a").is_err());
        assert!(Location::parse("file://server/share/a").is_err());
        // The query string, where API keys travel, never appears in messages.
        let l = Location::parse("https://x.example/a.txt?key=s3cret").unwrap();
        assert_eq!(l.shown(), "https://x.example/a.txt?…");
        assert_eq!(l.file_name().as_deref(), Some("a.txt"));
    }
}
