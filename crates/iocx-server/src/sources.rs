//! Rules evaluated against the store for the HTTP surfaces: API searches by expression, TAXII
//! collections and EDL lists.

use std::sync::Arc;

use iocx_engine::rules::CompiledRule;
use iocx_model::{Kind, Timestamp};
use iocx_store::{IndicatorDetail, RuleRow};

use crate::App;
use crate::edl::{EdlEntry, EdlList, EdlSource};
use crate::error::{ApiError, ApiResult};

/// A rule row for an ad-hoc expression.
pub(crate) fn adhoc(expression: &str) -> RuleRow {
    RuleRow {
        id: 0,
        name: "query".into(),
        expression: expression.to_string(),
        description: String::new(),
        exclusions: Vec::new(),
        muted: false,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    }
}

/// Compiles `rule` for the store, now.
///
/// # Errors
/// 400 on `field` when it does not parse; store errors.
pub(crate) async fn compile(app: &App, rule: RuleRow, field: &str) -> ApiResult<Arc<CompiledRule>> {
    let store = app.store().clone();
    tokio::task::spawn_blocking(move || {
        iocx_engine::rules::compile(&store, &rule, Timestamp::now())
    })
    .await
    .map_err(ApiError::internal)?
    .map(Arc::new)
    .map_err(|e| match e {
        iocx_engine::EngineError::Rule(m) => ApiError::invalid(field, m),
        other => other.into(),
    })
}

/// The rule called `name`.
///
/// # Errors
/// 404 when there is none.
pub(crate) async fn rule(app: &App, name: &str) -> ApiResult<RuleRow> {
    let n = name.to_string();
    app.store()
        .call(move |s| s.rule(&n))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("rule {name:?}")))
}

/// Details of `ids` that `rule`'s allow-lists do not exclude, in the order given.
///
/// # Errors
/// Store errors.
pub(crate) async fn details_kept(
    app: &App,
    rule: &CompiledRule,
    ids: Vec<i64>,
    with_observations: bool,
) -> ApiResult<Vec<IndicatorDetail>> {
    let details = app
        .store()
        .call(move |s| s.details(&ids, with_observations))
        .await?;
    Ok(details
        .into_iter()
        .filter(|d| {
            rule.exclusions
                .iter()
                .all(|l| l.matches(d.indicator.kind, &d.indicator.value).is_none())
        })
        .collect())
}

/// EDL lists from the `[edl.NAME]` sections: the active indicators the named rule selects.
pub(crate) struct StoreEdl {
    app: Arc<App>,
}

impl StoreEdl {
    pub(crate) fn new(app: Arc<App>) -> StoreEdl {
        StoreEdl { app }
    }
}

#[async_trait::async_trait]
impl EdlSource for StoreEdl {
    async fn list(&self, name: &str) -> Option<EdlList> {
        let section = self.app.config.edl.get(name)?;
        Some(EdlList {
            name: name.to_string(),
            kinds: section.parsed_kinds().unwrap_or_default(),
            capacity: section.capacity,
            strip_url_scheme: section.strip_url_scheme,
        })
    }

    async fn generation(&self, name: &str) -> u64 {
        // The store's last material change, the rule's last edit, and the minute (expiry is
        // derived from time, so a list is rebuilt at most once a minute even when idle).
        let last = self
            .app
            .store()
            .call(|s| s.last_change())
            .await
            .unwrap_or(0);
        let rule_updated = match self.app.config.edl.get(name) {
            Some(section) => {
                let r = section.rule.clone();
                self.app
                    .store()
                    .call(move |s| s.rule(&r))
                    .await
                    .ok()
                    .flatten()
                    .map_or(0, |r| r.updated_at.0)
            }
            None => 0,
        };
        let minute = Timestamp::now().0 / 60;
        (last as u64)
            .wrapping_mul(1_000_003)
            .wrapping_add(rule_updated as u64)
            .wrapping_mul(1_000_003)
            .wrapping_add(minute as u64)
    }

    async fn entries(&self, list: &EdlList) -> Result<Vec<EdlEntry>, String> {
        let section = self
            .app
            .config
            .edl
            .get(&list.name)
            .ok_or_else(|| format!("EDL {:?} is not configured", list.name))?;
        let mut row = rule(&self.app, &section.rule)
            .await
            .map_err(|e| format!("edl.{}.rule: {}", list.name, e.message))?;
        // Lists hold what is in force: only active indicators.
        row.expression = format!("({}) and active", row.expression);
        let compiled = compile(&self.app, row, "rule")
            .await
            .map_err(|e| e.message)?;
        let mut entries = Vec::new();
        let mut after = 0;
        loop {
            let (sql, params) = (compiled.sql.clone(), compiled.params.clone());
            let ids = self
                .app
                .store()
                .call(move |s| s.select_ids(&sql, &params, after, 20_000))
                .await
                .map_err(|e| e.to_string())?;
            let Some(&last) = ids.last() else { break };
            after = last;
            let details = details_kept(&self.app, &compiled, ids, false)
                .await
                .map_err(|e| e.message)?;
            entries.extend(details.into_iter().map(|d| EdlEntry {
                kind: d.indicator.kind,
                priority: i64::from(d.aggregate.severity as u8) << 40
                    | (d.aggregate.hits.min((1 << 40) - 1) as i64),
                value: d.indicator.value,
            }));
        }
        Ok(entries)
    }
}

/// The kinds EDL and TAXII can carry, for messages.
pub(crate) fn kind_names() -> String {
    Kind::ALL
        .iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
