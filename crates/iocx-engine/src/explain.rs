//! "Why is this indicator (not) shared there?" — for every sharing, or one.

use iocx_model::rule::IndicatorView;
use iocx_model::{Indicator, Timestamp};
use iocx_store::{Delivery, IndicatorDetail};
use serde::Serialize;

use crate::{Engine, EngineError};

/// The answer for one sharing.
#[derive(Debug, Clone, Serialize)]
pub struct SharingExplanation {
    /// The sharing.
    pub sharing: String,
    /// Its destination and target.
    pub destination: String,
    /// The target.
    pub target: String,
    /// Whether the indicator is delivered there now.
    pub delivered: bool,
    /// The verdict in one sentence.
    pub verdict: String,
    /// Each reason that decides it.
    pub reasons: Vec<String>,
    /// The rule's terms and whether each holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<iocx_model::rule::Explanation>,
    /// The ledger row, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_delivery: Option<Delivery>,
}

/// The view rules evaluate, for a stored indicator.
pub fn view(d: &IndicatorDetail, shared_with: Vec<String>) -> IndicatorView {
    IndicatorView {
        kind: Some(d.indicator.kind),
        value: d.indicator.value.clone(),
        severity: d.aggregate.severity,
        reputation: d.aggregate.reputation.get(),
        tags: d.aggregate.tags.as_slice().to_vec(),
        sources: d
            .observations
            .iter()
            .filter(|o| !o.observation.echo)
            .map(|o| o.source.clone())
            .collect(),
        hits: d.aggregate.hits,
        first_seen: d.aggregate.first_seen,
        last_seen: d.aggregate.last_seen,
        expires: d.aggregate.expires,
        aged_at: d.aggregate.aged_at,
        safe: d.aggregate.safe,
        shared_with,
    }
}

/// Explains `indicator` for every sharing (or only `only`).
///
/// # Errors
/// When the indicator is not stored, or on store errors.
pub async fn explain(
    engine: &Engine,
    indicator: &Indicator,
    only: Option<&str>,
) -> Result<(IndicatorDetail, Vec<SharingExplanation>), EngineError> {
    let i = indicator.clone();
    let detail = engine
        .store
        .call(move |s| s.lookup(&[i], true))
        .await?
        .pop()
        .flatten()
        .ok_or_else(|| EngineError::NotFound(format!("{indicator} in the store")))?;
    let id = detail.id;
    let deliveries = engine
        .store
        .call(move |s| s.deliveries_for_indicator(id))
        .await?;
    let sharings = engine.store.call(|s| s.sharings()).await?;
    let configurations = engine.store.call(|s| s.configurations()).await?;
    let shared_with: Vec<String> = deliveries
        .iter()
        .filter(|d| d.state == iocx_store::DeliveryState::Shared)
        .filter_map(|d| {
            sharings
                .iter()
                .find(|s| s.id == d.sharing_id)
                .map(|s| s.destination.clone())
        })
        .collect();
    let v = view(&detail, shared_with);
    let now = Timestamp::now();
    let mut out = Vec::new();
    for sh in sharings
        .into_iter()
        .filter(|s| only.is_none_or(|o| o == s.name))
    {
        let ledger = deliveries.iter().find(|d| d.sharing_id == sh.id).cloned();
        let mut reasons = Vec::new();
        let mut wanted = true;
        if !sh.enabled {
            reasons.push("the sharing is disabled".into());
            wanted = false;
        }
        let rule_row = {
            let n = sh.rule.clone();
            engine.store.call(move |s| s.rule(&n)).await?
        };
        let mut rule_explanation = None;
        match rule_row {
            None => {
                reasons.push(format!("its rule {:?} does not exist", sh.rule));
                wanted = false;
            }
            Some(r) => {
                let compiled = {
                    let r2 = r.clone();
                    engine
                        .store
                        .call(move |s| {
                            crate::rules::compile(s, &r2, now)
                                .map_err(|e| iocx_store::StoreError::Task(e.to_string()))
                        })
                        .await
                };
                match compiled {
                    Ok(c) => {
                        let e = c.rule.explain(&v, now);
                        if e.holds {
                            reasons.push(format!("rule {} selects it", r.name));
                        } else {
                            reasons.push(format!("rule {} does not select it", r.name));
                            wanted = false;
                        }
                        rule_explanation = Some(e);
                        for list in &c.exclusions {
                            if let Some(entry) =
                                list.matches(detail.indicator.kind, &detail.indicator.value)
                            {
                                reasons.push(format!(
                                    "allow-list {} excludes it (entry {entry})",
                                    list.name()
                                ));
                                wanted = false;
                            }
                        }
                    }
                    Err(e) => {
                        reasons.push(format!("its rule does not compile: {e}"));
                        wanted = false;
                    }
                }
            }
        }
        if !sh.sources.is_empty() && !sh.sources.iter().any(|s| v.sources.contains(s)) {
            reasons.push(format!(
                "none of its sources ({}) report it",
                sh.sources.join(", ")
            ));
            wanted = false;
        }
        if !detail.active {
            let why = match detail.aggregate.expires {
                Some(e) if e <= now => format!("it expired at {e}"),
                _ => format!("it aged out at {}", detail.aggregate.aged_at),
            };
            reasons.push(format!("it is inactive: {why}"));
            wanted = false;
        }
        if detail
            .observations
            .iter()
            .any(|o| o.source == sh.destination && !o.observation.echo)
        {
            reasons.push(format!(
                "{} reported it itself (sending it back would be an echo)",
                sh.destination
            ));
            wanted = false;
        }
        if let Some(c) = configurations.iter().find(|c| c.name == sh.destination)
            && let Some(connector) = iocx_connectors::connector(&c.connector)
            && let Some(t) = connector.spec().target(&sh.target)
        {
            if !t.delivery.kinds.contains(&detail.indicator.kind) {
                reasons.push(format!(
                    "the target does not take {} indicators",
                    detail.indicator.kind
                ));
                wanted = false;
            }
            let cap = t.delivery.capacity;
            if wanted
                && (cap.per_kind.is_some() || cap.total.is_some() || cap.total_bytes.is_some())
            {
                reasons.push(
                    "the target has a capacity limit: when more match than fit, the highest severity, hits and most recent go first"
                        .into(),
                );
            }
        }
        let delivered = ledger
            .as_ref()
            .is_some_and(|d| d.state == iocx_store::DeliveryState::Shared);
        if let Some(d) = &ledger {
            let when = d.updated_at;
            reasons.push(match (d.state, &d.reason) {
                (s, Some(r)) => format!("last delivery attempt: {} at {when} ({r})", s.as_str()),
                (s, None) => format!("last delivery attempt: {} at {when}", s.as_str()),
            });
        }
        let verdict = match (wanted, delivered) {
            (true, true) => "delivered".to_string(),
            (true, false) => "selected; delivered at the sharing's next run".to_string(),
            (false, true) => "delivered, and retracted at the next run".to_string(),
            (false, false) => "not delivered".to_string(),
        };
        out.push(SharingExplanation {
            sharing: sh.name.clone(),
            destination: sh.destination.clone(),
            target: sh.target.clone(),
            delivered,
            verdict,
            reasons,
            rule: rule_explanation,
            last_delivery: ledger,
        });
    }
    Ok((detail, out))
}
