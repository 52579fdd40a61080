//! Rules as the engine uses them: parsed, compiled for the store's dialect, with their
//! allow-lists loaded and compiled.

use std::sync::Arc;

use iocx_model::Kind;
use iocx_model::Timestamp;
use iocx_model::rule::{AllowList, BUILTIN_ALLOWLISTS, Dialect, Rule, SqlParam};
use iocx_store::{AllowEntry, RuleRow, SqlValue, Store};

use crate::share::Selector;
use crate::{Engine, EngineError};

/// A rule compiled for one store and one moment, with its exclusions.
pub struct CompiledRule {
    /// The parsed rule.
    pub rule: Rule,
    /// The SQL and its parameters.
    pub sql: String,
    /// Parameters of the SQL.
    pub params: Vec<SqlValue>,
    /// The allow-lists it excludes with.
    pub exclusions: Vec<AllowList>,
}

impl Selector for CompiledRule {
    fn sql(&self) -> (String, Vec<SqlValue>) {
        (self.sql.clone(), self.params.clone())
    }

    fn excluded(&self, kind: Kind, value: &str) -> Option<String> {
        self.exclusions
            .iter()
            .find_map(|l| l.matches(kind, value).map(|e| format!("{}: {e}", l.name())))
    }
}

/// The store's dialect, for the rule compiler.
pub fn dialect(store: &Store) -> Dialect {
    match store.dialect() {
        iocx_store::Dialect::Sqlite => Dialect::Sqlite,
        iocx_store::Dialect::Postgres => Dialect::Postgres,
    }
}

/// Converts compiled parameters to the store's.
pub fn params(p: &[SqlParam]) -> Vec<SqlValue> {
    p.iter()
        .map(|p| match p {
            SqlParam::Int(i) => SqlValue::Int(*i),
            SqlParam::Text(t) => SqlValue::Text(t.clone()),
        })
        .collect()
}

/// Parses rule text, as [`EngineError::Rule`] on failure.
///
/// # Errors
/// The parse error, at its line and column.
pub fn parse(text: &str) -> Result<Rule, EngineError> {
    Rule::parse(text).map_err(|e| EngineError::Rule(e.to_string()))
}

/// Creates the built-in allow-lists when absent (and keeps their entries current).
///
/// # Errors
/// On store errors.
pub fn ensure_builtin_allowlists(store: &Store) -> Result<(), EngineError> {
    for (name, description, entries) in BUILTIN_ALLOWLISTS {
        let list = store.save_allowlist(name, description, true)?;
        let have: Vec<&str> = list.entries.iter().map(|e| e.entry.as_str()).collect();
        let missing: Vec<AllowEntry> = entries
            .iter()
            .filter(|e| !have.contains(e))
            .map(|e| AllowEntry {
                entry: (*e).to_string(),
                comment: String::new(),
            })
            .collect();
        if !missing.is_empty() {
            store.add_allow_entries(name, &missing)?;
        }
    }
    Ok(())
}

/// Compiles `rule` for `store` at `now`, loading its exclusions.
///
/// # Errors
/// When the expression does not parse, or an exclusion list is missing or holds a bad entry.
pub fn compile(store: &Store, rule: &RuleRow, now: Timestamp) -> Result<CompiledRule, EngineError> {
    let parsed = parse(&rule.expression)
        .map_err(|e| EngineError::Rule(format!("rule {}: {e}", rule.name)))?;
    let filter = parsed.to_sql(dialect(store), now, 0);
    let mut exclusions = Vec::new();
    for name in &rule.exclusions {
        let list = store.allowlist(name)?.ok_or_else(|| {
            EngineError::NotFound(format!(
                "allow-list {name:?} (an exclusion of rule {})",
                rule.name
            ))
        })?;
        let compiled =
            AllowList::from_entries(&list.name, list.entries.iter().map(|e| e.entry.as_str()))
                .map_err(|e| EngineError::Rule(format!("allow-list {}: {e}", list.name)))?;
        exclusions.push(compiled);
    }
    Ok(CompiledRule {
        rule: parsed,
        sql: filter.sql,
        params: params(&filter.params),
        exclusions,
    })
}

/// The selector a share run uses for `rule`.
///
/// # Errors
/// As [`compile`].
pub async fn selector(
    engine: &Engine,
    rule: &RuleRow,
    now: Timestamp,
) -> Result<Arc<dyn Selector>, EngineError> {
    let rule = rule.clone();
    let compiled = engine
        .store
        .call(move |s| {
            compile(s, &rule, now).map_err(|e| iocx_store::StoreError::Task(e.to_string()))
        })
        .await
        .map_err(|e| match e {
            iocx_store::StoreError::Task(m) => EngineError::Rule(m),
            other => EngineError::Store(other),
        })?;
    Ok(Arc::new(compiled))
}
