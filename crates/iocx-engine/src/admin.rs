//! Changes an operator makes — rules, sharings, connection tests — validated once, for the
//! command line and the HTTP API alike. Every refusal names the field it is about.

use std::collections::BTreeMap;
use std::sync::Arc;

use iocx_connectors::{FieldError, FieldErrors, Values};
use iocx_model::Timestamp;
use iocx_store::{RuleRow, SharingRow, SharingSpec, Store};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{Engine, EngineError, configs, rules};

fn invalid(field: &str, message: impl Into<String>) -> EngineError {
    EngineError::Invalid(FieldErrors(vec![FieldError::new(field, message)]))
}

/// A rule as an operator writes it.
#[derive(Debug, Clone, Default)]
pub struct RuleInput {
    /// The rule's expression (parsed and stored in canonical form).
    pub expression: String,
    /// What it is for.
    pub description: String,
    /// Allow-lists whose entries it never selects.
    pub exclusions: Vec<String>,
    /// Whether sharings using it pause.
    pub muted: bool,
}

/// Creates or replaces the rule called `name`.
///
/// # Errors
/// [`EngineError::Invalid`] naming `name`, `expression` (with the parser's position) or an
/// unknown allow-list in `exclusions`; store errors.
pub fn save_rule(store: &Store, name: &str, input: &RuleInput) -> Result<RuleRow, EngineError> {
    configs::check_name(name).map_err(|e| EngineError::Invalid(FieldErrors(vec![e])))?;
    let parsed =
        rules::parse(&input.expression).map_err(|e| invalid("expression", e.to_string()))?;
    for list in &input.exclusions {
        if store.allowlist(list)?.is_none() {
            return Err(invalid(
                "exclusions",
                format!("no allow-list called {list:?}"),
            ));
        }
    }
    Ok(store.save_rule(
        name,
        &parsed.to_string(),
        &input.description,
        &input.exclusions,
        input.muted,
    )?)
}

/// Parameters of a sharing as given: typed JSON (the API) or `key=value` text (the CLI).
#[derive(Debug, Clone)]
pub enum ParamInput {
    /// JSON values by key.
    Json(BTreeMap<String, Value>),
    /// Text values by key, parsed by the target's field types.
    Text(Vec<(String, String)>),
}

/// Validates and saves a sharing (creating it, or replacing `existing`), and when enabled makes
/// its job due now so what already matches is shared at once.
///
/// # Errors
/// [`EngineError::Invalid`] naming the field (`rule`, `destination`, `target`, `sources`,
/// `params.KEY`, `interval`); store errors.
pub async fn save_sharing(
    engine: &Engine,
    existing: Option<&str>,
    mut spec: SharingSpec,
    params: ParamInput,
) -> Result<SharingRow, EngineError> {
    let store = engine.store.clone();
    configs::check_name(&spec.name).map_err(|e| EngineError::Invalid(FieldErrors(vec![e])))?;
    let (rule, destination, known_sources) = {
        let (r, d) = (spec.rule.clone(), spec.destination.clone());
        store
            .call(move |s| Ok((s.rule(&r)?, s.configuration(&d)?, s.sources()?)))
            .await?
    };
    if rule.is_none() {
        return Err(invalid("rule", format!("no rule called {:?}", spec.rule)));
    }
    let destination = destination.ok_or_else(|| {
        invalid(
            "destination",
            format!("no configuration called {:?}", spec.destination),
        )
    })?;
    let connector = configs::connector_of(&destination.connector)?;
    if !connector.spec().capabilities.push {
        return Err(invalid(
            "destination",
            format!(
                "{} uses {}, which cannot receive indicators",
                destination.name, destination.connector
            ),
        ));
    }
    // A connector whose targets depend on the live tool (an external program) is asked.
    let targets = if connector.spec().targets.is_empty() {
        configs::targets(engine, &destination)
            .await
            .map_err(|e| invalid("destination", format!("listing its targets: {e}")))?
    } else {
        connector.spec().targets.clone()
    };
    let Some(target) = targets.iter().find(|t| t.name == spec.target) else {
        let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        return Err(invalid(
            "target",
            format!(
                "{} offers {}",
                destination.connector,
                if names.is_empty() {
                    "no targets".to_string()
                } else {
                    names.join(", ")
                }
            ),
        ));
    };
    for s in &spec.sources {
        if !known_sources.iter().any(|x| &x.name == s) {
            return Err(invalid(
                "sources",
                format!("no configuration or source called {s:?}"),
            ));
        }
    }
    match params {
        ParamInput::Json(map) => spec.params.extend(map),
        ParamInput::Text(pairs) => {
            for (k, v) in pairs {
                let value = Values::parse_text(&target.fields, &k, &v)
                    .map_err(|e| EngineError::Invalid(FieldErrors(vec![e])))?;
                spec.params.insert(k, value);
            }
        }
    }
    let validated = Values::validate(&target.fields, &spec.params).map_err(|e| {
        EngineError::Invalid(FieldErrors(
            e.0.into_iter()
                .map(|f| FieldError::new(&format!("params.{}", f.field), f.message))
                .collect(),
        ))
    })?;
    if !validated.secret_part().is_empty() {
        return Err(invalid(
            "params",
            "sharing parameters cannot hold secrets; put them in the destination's configuration",
        ));
    }
    spec.params = validated.public_part();
    if !(60..=31 * 86_400).contains(&spec.interval_secs) {
        return Err(invalid(
            "interval",
            format!(
                "{} seconds is outside 60 seconds to 31 days",
                spec.interval_secs
            ),
        ));
    }
    let existing = existing.map(str::to_string);
    store
        .call(move |s| {
            let saved = s.save_sharing(existing.as_deref(), &spec)?;
            if saved.enabled {
                s.set_job_due(&format!("share:{}", saved.name), Timestamp::now())?;
            }
            Ok(saved)
        })
        .await
        .map_err(EngineError::from)
}

/// The spec of an existing sharing, for editing.
pub fn spec_of(s: &SharingRow) -> SharingSpec {
    SharingSpec {
        name: s.name.clone(),
        description: s.description.clone(),
        enabled: s.enabled,
        sources: s.sources.clone(),
        rule: s.rule.clone(),
        destination: s.destination.clone(),
        target: s.target.clone(),
        params: s.params.clone(),
        interval_secs: s.interval_secs,
        after_pull: s.after_pull,
    }
}

/// Tests a configuration against its tool: the connector's answer on success.
///
/// # Errors
/// [`EngineError::NotFound`]; the connector's error (authentication, reachability, …).
pub async fn test_configuration(engine: &Engine, name: &str) -> Result<String, EngineError> {
    let n = name.to_string();
    let c = engine
        .store
        .call(move |s| s.configuration(&n))
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("configuration {name:?}")))?;
    let (connector, ctx) = configs::context(
        &engine.vault,
        &c,
        Arc::new(iocx_connectors::TracingLog),
        None,
        CancellationToken::new(),
    )?;
    Ok(connector.validate(&ctx).await?)
}
