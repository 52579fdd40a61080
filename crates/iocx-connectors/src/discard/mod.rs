//! `discard`: a destination that accepts everything and keeps nothing — for trying out rules and
//! sharings before pointing them at a real tool, and for measuring the engine on its own.

use std::sync::LazyLock;

use async_trait::async_trait;
use iocx_model::Kind;

use crate::spec::{Capabilities, ConnectorSpec, Delivery, DeliveryMode, TargetSpec};
use crate::{Connector, ConnectorError, Context, ItemOutcome, PushItem, TargetCall};

/// The `discard` connector.
pub struct Discard;

static SPEC: LazyLock<ConnectorSpec> = LazyLock::new(|| {
    ConnectorSpec {
    name: "discard".into(),
    title: "Discard (dry run)".into(),
    description: "Accepts every indicator and keeps nothing: try rules and sharings before pointing them at a real tool, or measure the sharing engine alone.".into(),
    fields: Vec::new(),
    capabilities: Capabilities { pull: false, push: true, retract: true, sightings: false },
    targets: vec![TargetSpec {
        name: "drop".into(),
        label: "Drop".into(),
        description: "Every indicator counts as delivered.".into(),
        fields: Vec::new(),
        delivery: Delivery {
            mode: DeliveryMode::Incremental,
            batch_size: 10_000,
            byte_budget: None,
            kinds: Kind::ALL.to_vec(),
            capacity: Default::default(),
            removal: true,
            deploy: false,
        },
    }],
}
});

#[async_trait]
impl Connector for Discard {
    fn spec(&self) -> &ConnectorSpec {
        &SPEC
    }

    async fn validate(&self, _ctx: &Context) -> Result<String, ConnectorError> {
        Ok("nothing to connect to".into())
    }

    async fn push(
        &self,
        _ctx: &Context,
        _target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        Ok(vec![ItemOutcome::Shared; items.len()])
    }

    async fn retract(
        &self,
        _ctx: &Context,
        _target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        Ok(vec![ItemOutcome::Shared; items.len()])
    }
}
