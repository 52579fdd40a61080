//! What a connector declares about itself: its configuration fields, capabilities and targets.

use iocx_model::Kind;
use serde::{Deserialize, Serialize};

/// A connector's self-description, shown in `iocx connectors show`, the API and the console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorSpec {
    /// The registry name (`trend_vision_one`, `http_feed`, …).
    pub name: String,
    /// A human title.
    pub title: String,
    /// What it connects to and what it does.
    pub description: String,
    /// Configuration fields, in form order.
    pub fields: Vec<FieldSpec>,
    /// What it can do.
    pub capabilities: Capabilities,
    /// Push targets.
    pub targets: Vec<TargetSpec>,
}

impl ConnectorSpec {
    /// The field called `key`.
    pub fn field(&self, key: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// The target called `name`.
    pub fn target(&self, name: &str) -> Option<&TargetSpec> {
        self.targets.iter().find(|t| t.name == name)
    }
}

/// What a connector can do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// It pulls indicators.
    pub pull: bool,
    /// It pushes indicators to targets.
    pub push: bool,
    /// It removes what it pushed.
    pub retract: bool,
    /// It reports sightings (hits on indicators) from enforcement points.
    pub sightings: bool,
}

/// One configuration field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldSpec {
    /// The key values are stored under.
    pub key: String,
    /// The label in forms.
    pub label: String,
    /// The type, with its bounds or choices.
    pub kind: FieldKind,
    /// Whether a value is required (a default counts).
    pub required: bool,
    /// The value when none is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// Help text: what the value means, where to find it.
    pub help: String,
}

impl FieldSpec {
    /// A field with no default.
    pub fn new(key: &str, label: &str, kind: FieldKind, help: &str) -> FieldSpec {
        FieldSpec {
            key: key.into(),
            label: label.into(),
            kind,
            required: false,
            default: None,
            help: help.into(),
        }
    }

    /// Marks the field required.
    pub fn required(mut self) -> FieldSpec {
        self.required = true;
        self
    }

    /// Sets the default.
    pub fn default_value(mut self, value: impl Into<serde_json::Value>) -> FieldSpec {
        self.default = Some(value.into());
        self
    }

    /// Whether the field holds a secret.
    pub fn is_secret(&self) -> bool {
        matches!(self.kind, FieldKind::Secret)
    }
}

/// A field's type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldKind {
    /// One line of text.
    Text {
        /// The longest accepted value, in characters.
        #[serde(skip_serializing_if = "Option::is_none")]
        max_len: Option<usize>,
    },
    /// Several lines of text.
    Textarea,
    /// A secret: encrypted at rest, never shown, logged or returned.
    Secret,
    /// A number.
    Number {
        /// The smallest accepted value.
        #[serde(skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// The largest accepted value.
        #[serde(skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
        /// Whether only whole numbers are accepted.
        integer: bool,
    },
    /// One of a list.
    Choice {
        /// The choices.
        choices: Vec<Choice>,
    },
    /// Any subset of a list.
    MultiChoice {
        /// The choices.
        choices: Vec<Choice>,
    },
    /// Yes or no.
    Boolean,
}

impl FieldKind {
    /// Text without a length limit.
    pub const fn text() -> FieldKind {
        FieldKind::Text { max_len: None }
    }

    /// A whole number within bounds.
    pub fn integer(min: i64, max: i64) -> FieldKind {
        FieldKind::Number {
            min: Some(min as f64),
            max: Some(max as f64),
            integer: true,
        }
    }

    /// A choice among `(value, label)` pairs.
    pub fn choice(choices: &[(&str, &str)]) -> FieldKind {
        FieldKind::Choice {
            choices: choices.iter().map(|(v, l)| Choice::new(v, l)).collect(),
        }
    }

    /// A multi-choice among `(value, label)` pairs.
    pub fn multi_choice(choices: &[(&str, &str)]) -> FieldKind {
        FieldKind::MultiChoice {
            choices: choices.iter().map(|(v, l)| Choice::new(v, l)).collect(),
        }
    }
}

/// One choice of a choice field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// The stored value.
    pub value: String,
    /// The label shown.
    pub label: String,
}

impl Choice {
    /// A choice.
    pub fn new(value: &str, label: &str) -> Choice {
        Choice {
            value: value.into(),
            label: label.into(),
        }
    }
}

/// A push action a connector offers ("Add to Suspicious Object List").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetSpec {
    /// The stored name (`suspicious_objects`).
    pub name: String,
    /// The label (`Add to Suspicious Object List`).
    pub label: String,
    /// What it does at the destination.
    pub description: String,
    /// The target's own parameters, set per sharing.
    pub fields: Vec<FieldSpec>,
    /// How deliveries to it behave.
    pub delivery: Delivery,
}

/// How a target takes deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Incremental (only changes are sent) or full state (the whole set each time).
    pub mode: DeliveryMode,
    /// The most items per request.
    pub batch_size: usize,
    /// The most bytes per request body, when the API limits it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub byte_budget: Option<usize>,
    /// The kinds it takes; others are skipped as "kind not supported".
    pub kinds: Vec<Kind>,
    /// The most it holds in all.
    #[serde(default)]
    pub capacity: Capacity,
    /// Whether it can remove items (retraction).
    pub removal: bool,
    /// Whether a deploy step follows a push (Netskope's "apply pending changes").
    pub deploy: bool,
}

/// How incremental or full-state a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// Items are added (and removed) one batch at a time.
    Incremental,
    /// The destination's whole list is replaced each time.
    FullState,
}

/// Total capacity of a destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// The most items of each kind (Trend Vision One: 10,000 per type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_kind: Option<u64>,
    /// The most items in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// The most bytes in all (Netskope URL list: 7 MB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
}
