//! `stix_file`: STIX 2.1 bundles from a URL or a local file.
//!
//! The machinery is `http_feed`'s ([`crate::http_feed::pull_feed`]) with the format fixed to
//! STIX: the same authentication, gzip, conditional requests, size limit, resumable
//! checkpoints (a position is the index of an object in the bundle's `objects`) and full-snapshot
//! retirement. What a bundle's objects become:
//!
//! - an `indicator` with a STIX pattern of simple comparisons (`[domain-name:value = 'x']`,
//!   `OR`s and `IN` lists expand to one record each) becomes records; its `valid_until` becomes
//!   the record's expiry, `valid_from`/`created` its first-seen, `modified` its last-seen,
//!   `labels` its tags, `description` (or `name`) its comment and the first external
//!   reference's URL its link;
//! - `ipv4-addr`, `ipv6-addr`, `domain-name`, `url`, `email-addr` observables and `file`
//!   objects with MD5, SHA-1 or SHA-256 hashes become records;
//! - a **revoked** indicator (`"revoked": true`) is not ingested: it is counted among the
//!   rejections under `revoked` (and does not count against `max_reject_percent`). An indicator
//!   ingested earlier and revoked since is retired when the configuration marks the bundle as a
//!   full snapshot (it no longer yields a record), and otherwise ages out with the
//!   configuration's aging criteria;
//! - other objects (identities, relationships, malware, reports…) are skipped silently;
//!   patterns iocx cannot express (`AND`, `FOLLOWEDBY`, non-STIX pattern types) are rejected
//!   as `unsupported_pattern`.

#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use async_trait::async_trait;
use futures::stream::BoxStream;
use iocx_model::feed::Format;

use crate::http_feed::{access_fields, pull_feed, record_fields, url_field, validate_feed};
use crate::spec::{Capabilities, ConnectorSpec};
use crate::{Connector, ConnectorError, Context, PullBatch};

/// The `stix_file` connector.
pub struct StixFile;

static SPEC: LazyLock<ConnectorSpec> = LazyLock::new(|| {
    let mut fields = vec![url_field()];
    fields.extend(record_fields());
    fields.extend(access_fields());
    ConnectorSpec {
        name: "stix_file".into(),
        title: "STIX 2.1 bundle (HTTP or file)".into(),
        description: "Pulls the indicators and observables of a STIX 2.1 bundle from a URL or \
                      a local file. Revoked indicators are skipped and counted; valid_until \
                      becomes the expiry."
            .into(),
        fields,
        capabilities: Capabilities {
            pull: true,
            push: false,
            retract: false,
            sightings: false,
        },
        targets: Vec::new(),
    }
});

#[async_trait]
impl Connector for StixFile {
    fn spec(&self) -> &ConnectorSpec {
        &SPEC
    }

    async fn validate(&self, ctx: &Context) -> Result<String, ConnectorError> {
        validate_feed(ctx, Some(Format::Stix)).await
    }

    fn pull<'a>(
        &'a self,
        ctx: &'a Context,
        checkpoint: Option<serde_json::Value>,
    ) -> BoxStream<'a, Result<PullBatch, ConnectorError>> {
        pull_feed(ctx, checkpoint, Some(Format::Stix))
    }
}
