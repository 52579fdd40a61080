//! EDL lists: plain-text indicator lists that firewalls pull (`GET /edl/NAME.txt`).
//!
//! A list is defined by an [`EdlList`] (kinds, capacity, format options); its entries come
//! from an [`EdlSource`] the service core supplies (usually a published rule evaluated
//! against the store). Rendered lists are cached in memory and carry a strong `ETag`, so a
//! firewall polling with `If-None-Match` gets `304 Not Modified` without the list being
//! rebuilt. The cache for a list is regenerated when the source's generation changes
//! (the core bumps it when indicators or the list definition change) or on
//! [`EdlState::invalidate`].
//!
//! Choices: when more entries match than the capacity allows, the highest `priority`
//! wins, ties broken by value so the output is stable; `strip_url_scheme` removes
//! `http://`/`https://` (PAN-OS rejects schemes in URL lists); the ETag is a 128-bit
//! SipHash-1-3 (fixed keys) of the body, so it is the same on every node that renders
//! the same list.

mod render;

pub use render::{EdlEntry, EdlList, Rendered, render};

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::Mutex;

/// Where EDL definitions and their entries come from.
#[async_trait::async_trait]
pub trait EdlSource: Send + Sync + 'static {
    /// The definition of list `name`, or `None` when no such list is configured.
    async fn list(&self, name: &str) -> Option<EdlList>;
    /// A number that changes whenever the entries or definition of `name` may have changed.
    async fn generation(&self, name: &str) -> u64;
    /// The candidate entries of `list` (filtering, ordering and capping are done here).
    ///
    /// # Errors
    /// A message describing why the entries could not be read.
    async fn entries(&self, list: &EdlList) -> Result<Vec<EdlEntry>, String>;
}

/// A rendered list, the source generation it was built from, and whether a rebuild runs.
struct Entry {
    generation: u64,
    rendered: Arc<Rendered>,
    refreshing: bool,
}

/// Rendered lists by name.
type Cache = HashMap<String, Entry>;

/// Shared state of the EDL router: the source and the rendered-list cache.
#[derive(Clone)]
pub struct EdlState {
    source: Arc<dyn EdlSource>,
    cache: Arc<Mutex<Cache>>,
}

impl EdlState {
    /// State reading lists from `source`.
    pub fn new(source: Arc<dyn EdlSource>) -> Self {
        Self {
            source,
            cache: Arc::default(),
        }
    }

    /// Drops every cached list; the next request regenerates it.
    pub async fn invalidate(&self) {
        self.cache.lock().await.clear();
    }

    /// The rendered list `name`. The first request builds it; afterwards requests are always
    /// answered from the cache, and a change in the source's generation starts one rebuild in
    /// the background whose result replaces the cached list (stale-while-revalidate), so a
    /// firewall never waits for a large list to be rebuilt.
    ///
    /// # Errors
    /// `Ok(None)` when no such list exists; `Err` with the source's message when the
    /// entries could not be read for a first build.
    pub async fn get(&self, name: &str) -> Result<Option<Arc<Rendered>>, String> {
        let generation = self.source.generation(name).await;
        // One lock for check-and-fill: concurrent pollers of a new list render it once.
        let mut cache = self.cache.lock().await;
        if let Some(entry) = cache.get_mut(name) {
            if entry.generation != generation && !entry.refreshing {
                entry.refreshing = true;
                let (state, name) = (self.clone(), name.to_owned());
                tokio::spawn(async move { state.refresh(&name, generation).await });
            }
            return Ok(Some(Arc::clone(&entry.rendered)));
        }
        let Some(list) = self.source.list(name).await else {
            return Ok(None);
        };
        let entries = self.source.entries(&list).await?;
        let rendered = Arc::new(render(&list, entries));
        cache.insert(
            name.to_owned(),
            Entry {
                generation,
                rendered: Arc::clone(&rendered),
                refreshing: false,
            },
        );
        Ok(Some(rendered))
    }

    async fn refresh(&self, name: &str, generation: u64) {
        let built = match self.source.list(name).await {
            None => None,
            Some(list) => Some(
                self.source
                    .entries(&list)
                    .await
                    .map(|entries| Arc::new(render(&list, entries))),
            ),
        };
        let mut cache = self.cache.lock().await;
        match built {
            None => {
                cache.remove(name);
            }
            Some(Ok(rendered)) => {
                cache.insert(
                    name.to_owned(),
                    Entry {
                        generation,
                        rendered,
                        refreshing: false,
                    },
                );
            }
            Some(Err(e)) => {
                tracing::warn!(list = name, error = %e, "Rebuilding an EDL list failed; serving the previous one");
                if let Some(entry) = cache.get_mut(name) {
                    entry.refreshing = false;
                }
            }
        }
    }
}

/// The EDL routes: `GET /edl/{name}.txt`.
pub fn router<S: Clone + Send + Sync + 'static>(state: EdlState) -> Router<S> {
    Router::new()
        .route("/edl/{file}", get(serve_list))
        .with_state(state)
}

async fn serve_list(
    State(state): State<EdlState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(name) = file.strip_suffix(".txt") else {
        return (StatusCode::NOT_FOUND, "EDL paths end in .txt\n").into_response();
    };
    let rendered = match state.get(name).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                format!("no EDL list named {name:?}\n"),
            )
                .into_response();
        }
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("EDL list {name:?} could not be built: {e}\n"),
            )
                .into_response();
        }
    };
    let etag = HeaderValue::from_str(&rendered.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let not_modified = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| etag_matches(v, &rendered.etag));
    let common = [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if not_modified {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        StatusCode::OK,
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        rendered.body.clone(),
    )
        .into_response()
}

/// Whether an `If-None-Match` header value matches `etag` (weak comparison, RFC 9110 §13.1.2).
fn etag_matches(header_value: &str, etag: &str) -> bool {
    let ours = etag.trim_start_matches("W/");
    header_value
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == ours)
}

#[cfg(test)]
mod tests;
