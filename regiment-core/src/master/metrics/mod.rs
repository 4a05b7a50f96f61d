//! The master's metrics, in the Prometheus text format: the policy's counters (its
//! [`Stats`], which the driver hands over as it carries out the policy's effects), and gauges
//! read from the status snapshot at each scrape.
//!
//! Every label takes its values from a fixed set: states, rollout outcomes, the causes of a
//! replacement, the reasons of a kill, and the slots of the current workers (at most one series
//! per slot, and none for a slot removed by a scale-down). Free text (a worker's reason, an
//! exit status) never becomes a label, nor does the name a worker gives its own criterion (all
//! of them count as `custom`), so the master keeps no unbounded label set.

mod counters;
mod scrape;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;

use crate::events::Status;
pub(crate) use counters::Metrics;
use scrape::Scrape;

/// The `Content-Type` of [`Metrics::encode`]'s text: the Prometheus text format 0.0.4.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// How long the supervisor loop may go without a turn before `/healthz` reports it stalled. It
/// turns at least once a second (the driver's reap tick); a stall this long is a stuck master.
pub(crate) const STALLED_AFTER: Duration = Duration::from_secs(30);

impl Metrics {
    /// The exposition: these counters, and the gauges of `status`.
    pub(crate) fn encode(self: &Arc<Self>, status: Status) -> String {
        // A registry per scrape: the gauges are the snapshot's, so a series of a worker or a
        // slot that is gone is gone from the next scrape, and concurrent scrapes share nothing
        // but the counters.
        let mut registry = Registry::with_prefix("regiment");
        registry.register_collector(Box::new(Scrape {
            status,
            metrics: self.clone(),
        }));
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        text
    }
}
