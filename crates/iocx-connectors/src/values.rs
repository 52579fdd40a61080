//! Configuration values, validated against a connector's fields.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spec::{FieldKind, FieldSpec};

/// Validated field values (secrets included, in memory only). `Debug` masks secrets.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Values {
    values: BTreeMap<String, Value>,
    #[serde(skip)]
    secret_keys: Vec<String>,
}

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in &self.values {
            if self.secret_keys.contains(k) {
                map.entry(k, &"***");
            } else {
                map.entry(k, v);
            }
        }
        map.finish()
    }
}

/// A value that does not fit its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The field's key.
    pub field: String,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl FieldError {
    /// An error about `field`.
    pub fn new(field: &str, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every error of one validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct FieldErrors(pub Vec<FieldError>);

impl Values {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// Text (or a secret) value of `key`, if set and non-empty.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Numeric value of `key`.
    pub fn number(&self, key: &str) -> Option<f64> {
        self.values.get(key).and_then(Value::as_f64)
    }

    /// Whole-number value of `key`.
    pub fn integer(&self, key: &str) -> Option<i64> {
        self.values
            .get(key)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    }

    /// Boolean value of `key` (false when unset).
    pub fn flag(&self, key: &str) -> bool {
        self.values
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Multi-choice value of `key`.
    pub fn list(&self, key: &str) -> Vec<String> {
        match self.values.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    /// Every secret value, for redacting them from messages.
    pub fn secret_values(&self) -> Vec<String> {
        self.secret_keys
            .iter()
            .filter_map(|k| self.text(k))
            .map(str::to_string)
            .collect()
    }

    /// The non-secret values, as stored in clear.
    pub fn public_part(&self) -> BTreeMap<String, Value> {
        self.values
            .iter()
            .filter(|(k, _)| !self.secret_keys.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The secret values, to be sealed.
    pub fn secret_part(&self) -> BTreeMap<String, Value> {
        self.values
            .iter()
            .filter(|(k, _)| self.secret_keys.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Which secret keys are set: what the API and the CLI show instead of the values.
    pub fn secrets_set(&self) -> BTreeMap<String, bool> {
        self.secret_keys
            .iter()
            .map(|k| (k.clone(), self.text(k).is_some()))
            .collect()
    }

    /// Validates `input` (public and secret values together) against `fields`: unknown keys,
    /// missing required values, wrong types, out-of-range numbers and unknown choices are all
    /// reported, each naming its field; defaults fill what is absent.
    ///
    /// # Errors
    /// Every problem found.
    pub fn validate(
        fields: &[FieldSpec],
        input: &BTreeMap<String, Value>,
    ) -> Result<Values, FieldErrors> {
        let mut errors = Vec::new();
        for key in input.keys() {
            if !fields.iter().any(|f| &f.key == key) {
                let known: Vec<&str> = fields.iter().map(|f| f.key.as_str()).collect();
                errors.push(FieldError::new(
                    key,
                    format!("unknown field; this connector has: {}", known.join(", ")),
                ));
            }
        }
        let mut values = BTreeMap::new();
        let mut secret_keys = Vec::new();
        for field in fields {
            if field.is_secret() {
                secret_keys.push(field.key.clone());
            }
            let given = input
                .get(&field.key)
                .filter(|v| !is_blank(v))
                .or(field.default.as_ref());
            match given {
                None if field.required => errors.push(FieldError::new(
                    &field.key,
                    format!("{} is required", field.label),
                )),
                None => {}
                Some(v) => match check(field, v) {
                    Ok(v) => {
                        values.insert(field.key.clone(), v);
                    }
                    Err(message) => errors.push(FieldError::new(&field.key, message)),
                },
            }
        }
        if errors.is_empty() {
            Ok(Values {
                values,
                secret_keys,
            })
        } else {
            Err(FieldErrors(errors))
        }
    }

    /// Converts `key=value` text (as given on the command line) to the JSON the field expects.
    ///
    /// # Errors
    /// When the key is unknown or the text does not fit the field's type.
    pub fn parse_text(fields: &[FieldSpec], key: &str, text: &str) -> Result<Value, FieldError> {
        let field = fields.iter().find(|f| f.key == key).ok_or_else(|| {
            let known: Vec<&str> = fields.iter().map(|f| f.key.as_str()).collect();
            FieldError::new(
                key,
                format!("unknown field; this connector has: {}", known.join(", ")),
            )
        })?;
        Ok(match &field.kind {
            FieldKind::Number { .. } => {
                let n: f64 = text
                    .trim()
                    .parse()
                    .map_err(|_| FieldError::new(key, format!("{text:?} is not a number")))?;
                serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .ok_or_else(|| FieldError::new(key, "not a finite number"))?
            }
            FieldKind::Boolean => Value::Bool(parse_bool(text).ok_or_else(|| {
                FieldError::new(key, format!("{text:?} is not a boolean; use true or false"))
            })?),
            FieldKind::MultiChoice { .. } => Value::Array(
                text.split(',')
                    .map(|s| Value::String(s.trim().to_string()))
                    .filter(|v| !is_blank(v))
                    .collect(),
            ),
            _ => Value::String(text.to_string()),
        })
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn is_blank(v: &Value) -> bool {
    matches!(v, Value::Null) || v.as_str().is_some_and(|s| s.trim().is_empty())
}

fn check(field: &FieldSpec, v: &Value) -> Result<Value, String> {
    match &field.kind {
        FieldKind::Text { max_len } => {
            let s = v.as_str().ok_or("expected text")?;
            if let Some(max) = max_len
                && s.chars().count() > *max
            {
                return Err(format!("is longer than {max} characters"));
            }
            if s.contains(['\n', '\r']) {
                return Err("must be one line".into());
            }
            Ok(Value::String(s.trim().to_string()))
        }
        FieldKind::Textarea | FieldKind::Secret => Ok(Value::String(
            v.as_str().ok_or("expected text")?.to_string(),
        )),
        FieldKind::Number { min, max, integer } => {
            let n = match v {
                Value::Number(n) => n.as_f64().ok_or("not a number")?,
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| format!("{s:?} is not a number"))?,
                _ => return Err("expected a number".into()),
            };
            if *integer && n.fract() != 0.0 {
                return Err(format!("{n} is not a whole number"));
            }
            match (min, max) {
                (Some(lo), Some(hi)) if n < *lo || n > *hi => {
                    return Err(format!("{n} is outside {lo}–{hi}"));
                }
                (Some(lo), None) if n < *lo => {
                    return Err(format!("{n} is below the minimum {lo}"));
                }
                (None, Some(hi)) if n > *hi => {
                    return Err(format!("{n} is above the maximum {hi}"));
                }
                _ => {}
            }
            Ok(if *integer {
                Value::from(n as i64)
            } else {
                serde_json::json!(n)
            })
        }
        FieldKind::Boolean => match v {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::String(s) => parse_bool(s)
                .map(Value::Bool)
                .ok_or_else(|| format!("{s:?} is not true or false")),
            _ => Err("expected true or false".into()),
        },
        FieldKind::Choice { choices } => {
            let s = v.as_str().ok_or("expected one of the choices")?;
            if choices.iter().any(|c| c.value == s) {
                Ok(Value::String(s.to_string()))
            } else {
                let allowed: Vec<&str> = choices.iter().map(|c| c.value.as_str()).collect();
                Err(format!("{s:?} is not one of {}", allowed.join(", ")))
            }
        }
        FieldKind::MultiChoice { choices } => {
            let items: Vec<String> = match v {
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string).ok_or("expected text items"))
                    .collect::<Result<_, _>>()?,
                Value::String(s) => s
                    .split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect(),
                _ => return Err("expected a list of choices".into()),
            };
            for item in &items {
                if !choices.iter().any(|c| &c.value == item) {
                    let allowed: Vec<&str> = choices.iter().map(|c| c.value.as_str()).collect();
                    return Err(format!("{item:?} is not one of {}", allowed.join(", ")));
                }
            }
            Ok(Value::Array(items.into_iter().map(Value::String).collect()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::FieldKind;

    fn fields() -> Vec<FieldSpec> {
        vec![
            FieldSpec::new("url", "URL", FieldKind::text(), "").required(),
            FieldSpec::new("token", "Token", FieldKind::Secret, ""),
            FieldSpec::new("days", "Days", FieldKind::integer(1, 365), "").default_value(7),
            FieldSpec::new(
                "region",
                "Region",
                FieldKind::choice(&[("us", "US"), ("eu", "EU")]),
                "",
            )
            .default_value("us"),
            FieldSpec::new(
                "types",
                "Types",
                FieldKind::multi_choice(&[("a", "A"), ("b", "B")]),
                "",
            ),
            FieldSpec::new("poll", "Poll", FieldKind::Boolean, "").default_value(true),
        ]
    }

    #[test]
    fn validates_with_defaults_and_masks_secrets() {
        let input = BTreeMap::from([
            ("url".to_string(), Value::from("https://x.example")),
            ("token".to_string(), Value::from("s3cret")),
            ("types".to_string(), Value::from("a,b")),
        ]);
        let v = Values::validate(&fields(), &input).unwrap();
        assert_eq!(v.integer("days"), Some(7));
        assert_eq!(v.text("region"), Some("us"));
        assert_eq!(v.list("types"), ["a", "b"]);
        assert!(v.flag("poll"));
        assert!(!format!("{v:?}").contains("s3cret"));
        assert_eq!(v.secret_values(), ["s3cret"]);
        assert!(!v.public_part().contains_key("token"));
        assert_eq!(v.secrets_set().get("token"), Some(&true));
    }

    #[test]
    fn every_error_names_its_field() {
        let input = BTreeMap::from([
            ("days".to_string(), Value::from(400)),
            ("region".to_string(), Value::from("mars")),
            ("typo".to_string(), Value::from(1)),
            ("types".to_string(), Value::from("c")),
        ]);
        let errs = Values::validate(&fields(), &input).unwrap_err().0;
        let named: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named, ["typo", "url", "days", "region", "types"]);
        assert!(errs[2].message.contains("outside 1–365"), "{}", errs[2]);
        assert!(
            errs[3].message.contains("\"mars\" is not one of us, eu"),
            "{}",
            errs[3]
        );
        assert_eq!(
            Values::parse_text(&fields(), "days", "x")
                .unwrap_err()
                .field,
            "days"
        );
        assert_eq!(
            Values::parse_text(&fields(), "poll", "no"),
            Ok(Value::Bool(false))
        );
    }
}
