use std::fmt;
use std::sync::{Arc, Once, Weak};
use std::time::Duration;

use tower_layer::Layer;

use super::MemoryFootprintService;
use super::watch::{MIB, Watch};
use crate::Replacer;
use crate::sampler::{self, Job, Measure};

/// A layer that asks for this worker's replacement once its memory exceeds a threshold.
///
/// See the [module docs](crate::memory_footprint).
///
/// ```
/// use regiment_tower::MemoryFootprint;
/// let layer = MemoryFootprint::mb(750);
/// assert_eq!(layer.threshold(), 750 * 1024 * 1024);
/// ```
#[derive(Clone)]
pub struct MemoryFootprint {
    pub(super) watch: Arc<Watch>,
}

impl MemoryFootprint {
    /// Replace above `mb` mebibytes (`mb * 2^20` bytes) of RSS.
    ///
    /// ```
    /// let layer = regiment_tower::MemoryFootprint::mb(512);
    /// assert_eq!(layer.threshold(), 512 << 20);
    /// ```
    pub fn mb(mb: u64) -> Self {
        Self::bytes(mb.saturating_mul(MIB))
    }

    /// Replace above `bytes` bytes of RSS.
    ///
    /// ```
    /// let layer = regiment_tower::MemoryFootprint::bytes(1_500_000_000);
    /// assert_eq!(layer.threshold(), 1_500_000_000);
    /// ```
    pub fn bytes(bytes: u64) -> Self {
        Self::build(Measure::Rss, bytes, None, Replacer::worker())
    }

    fn build(
        measure: Measure,
        threshold: u64,
        interval: Option<Duration>,
        replacer: Replacer,
    ) -> Self {
        Self {
            watch: Arc::new(Watch {
                measure,
                threshold,
                interval,
                replacer,
                current: sampler::latest_bytes(measure),
                registered: Once::new(),
            }),
        }
    }

    /// Compares `measure` instead of RSS (PSS and USS: Linux only; elsewhere a warning is
    /// logged once and the layer never fires). PSS and USS cost far more to read than RSS,
    /// and more the bigger the process (5 ms with 256 MiB resident on the reference
    /// machine), so their default interval is 10 s rather than 1 s; see
    /// [`Measure::default_interval`].
    ///
    /// ```
    /// use regiment_tower::{Measure, MemoryFootprint};
    /// let layer = MemoryFootprint::mb(300).with_measure(Measure::Uss);
    /// assert_eq!(layer.measure(), Measure::Uss);
    /// ```
    pub fn with_measure(self, measure: Measure) -> Self {
        let w = &self.watch;
        Self::build(measure, w.threshold, w.interval, w.replacer.clone())
    }

    /// Samples every `interval` instead of the measure's default (1 s for RSS, 10 s for PSS
    /// and USS; at least 1 ms). Several layers on one measure share its samples, taken at the
    /// shortest of their intervals.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = regiment_tower::MemoryFootprint::mb(750).with_interval(Duration::from_secs(5));
    /// assert_eq!(layer.interval(), Duration::from_secs(5));
    /// ```
    pub fn with_interval(self, interval: Duration) -> Self {
        let w = &self.watch;
        Self::build(w.measure, w.threshold, Some(interval), w.replacer.clone())
    }

    /// Fires into `replacer` instead of the process-wide [`Replacer::worker`].
    ///
    /// ```
    /// use regiment_tower::{MemoryFootprint, Replacer};
    /// let layer = MemoryFootprint::mb(750).with_replacer(Replacer::new(|reason| println!("{reason}")));
    /// assert!(!layer.replacer().fired());
    /// ```
    pub fn with_replacer(self, replacer: Replacer) -> Self {
        let w = &self.watch;
        Self::build(w.measure, w.threshold, w.interval, replacer)
    }

    /// The threshold in bytes.
    ///
    /// ```
    /// assert_eq!(regiment_tower::MemoryFootprint::mb(1).threshold(), 1 << 20);
    /// ```
    pub fn threshold(&self) -> u64 {
        self.watch.threshold
    }

    /// The measure compared.
    ///
    /// ```
    /// use regiment_tower::{Measure, MemoryFootprint};
    /// assert_eq!(MemoryFootprint::mb(1).measure(), Measure::Rss);
    /// ```
    pub fn measure(&self) -> Measure {
        self.watch.measure
    }

    /// The sampling interval.
    ///
    /// ```
    /// use std::time::Duration;
    /// use regiment_tower::{Measure, MemoryFootprint};
    /// assert_eq!(MemoryFootprint::mb(1).interval(), Duration::from_secs(1));
    /// assert_eq!(MemoryFootprint::mb(1).with_measure(Measure::Pss).interval(), Duration::from_secs(10));
    /// ```
    pub fn interval(&self) -> Duration {
        self.watch.interval()
    }

    /// The replacer this layer fires into.
    ///
    /// ```
    /// use regiment_tower::{MemoryFootprint, Replacer};
    /// assert!(MemoryFootprint::mb(1).replacer().same_as(&Replacer::worker()));
    /// ```
    pub fn replacer(&self) -> &Replacer {
        &self.watch.replacer
    }
}

impl fmt::Debug for MemoryFootprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryFootprint")
            .field("measure", &self.watch.measure)
            .field("threshold", &self.watch.threshold)
            .field("interval", &self.watch.interval())
            .field("replacer", &self.watch.replacer)
            .finish()
    }
}

impl<S> Layer<S> for MemoryFootprint {
    type Service = MemoryFootprintService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        // Registered with the sampler when first used, not when built: a layer reconfigured
        // by the builder methods, or never applied, starts nothing.
        let watch = &self.watch;
        watch.registered.call_once(|| {
            let job: Weak<dyn Job> = Arc::downgrade(watch) as Weak<dyn Job>;
            sampler::register(job, Some(watch.measure), watch.interval());
        });
        MemoryFootprintService {
            inner,
            watch: self.watch.clone(),
        }
    }
}
