//! Which traces are recorded: the samplers of `OTEL_TRACES_SAMPLER`, deciding once per
//! span from its parent and its trace id (so every process picks the same traces).

use crate::model::trace_context::{SpanContext, TraceId};

/// The root decision: for spans with no parent (or, under `ParentBased`, only those).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RootSampler {
    AlwaysOn,
    AlwaysOff,
    /// Records a trace when the last 8 bytes of its id, read as a big-endian number
    /// and shifted right by one, fall under `ratio × 2^63`: the rule the Go and Java
    /// SDKs use, so a trace sampled at ratio r here is sampled at r everywhere.
    TraceIdRatio {
        ratio: f64,
        bound: u64,
    },
}

impl RootSampler {
    /// A ratio sampler; 0 and 1 (and beyond) become never and always.
    pub fn ratio(ratio: f64) -> RootSampler {
        if ratio >= 1.0 {
            RootSampler::AlwaysOn
        } else if ratio <= 0.0 || ratio.is_nan() {
            RootSampler::AlwaysOff
        } else {
            RootSampler::TraceIdRatio {
                ratio,
                bound: (ratio * (1u64 << 63) as f64) as u64,
            }
        }
    }

    fn sample(&self, trace_id: &TraceId) -> bool {
        match *self {
            RootSampler::AlwaysOn => true,
            RootSampler::AlwaysOff => false,
            RootSampler::TraceIdRatio { bound, .. } => {
                let mut low = [0u8; 8];
                low.copy_from_slice(&trace_id.0[8..]);
                (u64::from_be_bytes(low) >> 1) < bound
            }
        }
    }
}

/// The configured sampler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    /// Decides on every span alone, ignoring the parent's decision.
    Root(RootSampler),
    /// Follows the parent's `sampled` flag (local or remote); spans with no parent
    /// use the root sampler. The OpenTelemetry default is `ParentBased(AlwaysOn)`.
    ParentBased(RootSampler),
}

impl Sampler {
    /// Whether a new span in `trace_id` under `parent` is recorded and exported.
    pub fn should_sample(&self, parent: Option<&SpanContext>, trace_id: &TraceId) -> bool {
        match self {
            Sampler::Root(root) => root.sample(trace_id),
            Sampler::ParentBased(root) => match parent {
                Some(p) if p.is_valid() => p.sampled,
                _ => root.sample(trace_id),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::trace_context::SpanId;

    fn trace_with_low(low: u64) -> TraceId {
        let mut id = [0xabu8; 16];
        id[8..].copy_from_slice(&low.to_be_bytes());
        TraceId(id)
    }

    #[test]
    fn ratio_bounds_pick_by_the_low_half_of_the_trace_id() {
        let half = RootSampler::ratio(0.5);
        // (low >> 1) < 2^62 exactly when low < 2^63.
        assert!(half.sample(&trace_with_low(0)));
        assert!(half.sample(&trace_with_low((1 << 63) - 1)));
        assert!(!half.sample(&trace_with_low(1 << 63)));
        assert!(!half.sample(&trace_with_low(u64::MAX)));
        assert_eq!(RootSampler::ratio(1.0), RootSampler::AlwaysOn);
        assert_eq!(RootSampler::ratio(2.0), RootSampler::AlwaysOn);
        assert_eq!(RootSampler::ratio(0.0), RootSampler::AlwaysOff);
        assert_eq!(RootSampler::ratio(f64::NAN), RootSampler::AlwaysOff);
    }

    #[test]
    fn a_ratio_samples_about_that_share_of_random_traces() {
        let sampler = Sampler::Root(RootSampler::ratio(0.25));
        let n = 20_000;
        let kept = (0..n)
            .filter(|_| sampler.should_sample(None, &TraceId::random()))
            .count();
        let share = kept as f64 / n as f64;
        assert!((0.22..0.28).contains(&share), "{share}");
    }

    #[test]
    fn parent_based_follows_the_parent_and_falls_back_to_the_root() {
        let trace = trace_with_low(u64::MAX);
        let parent = |sampled, remote| SpanContext {
            trace_id: trace,
            span_id: SpanId([1; 8]),
            sampled,
            remote,
        };
        let on = Sampler::ParentBased(RootSampler::AlwaysOn);
        let off = Sampler::ParentBased(RootSampler::AlwaysOff);
        for remote in [false, true] {
            assert!(on.should_sample(Some(&parent(true, remote)), &trace));
            assert!(!on.should_sample(Some(&parent(false, remote)), &trace));
            assert!(off.should_sample(Some(&parent(true, remote)), &trace));
        }
        assert!(on.should_sample(None, &trace));
        assert!(!off.should_sample(None, &trace));
        assert!(on.should_sample(Some(&SpanContext::INVALID), &trace));
        // A root sampler ignores the parent.
        let root_off = Sampler::Root(RootSampler::AlwaysOff);
        assert!(!root_off.should_sample(Some(&parent(true, true)), &trace));
        // parentbased_traceidratio: the ratio decides only for roots.
        let ratio = Sampler::ParentBased(RootSampler::ratio(0.5));
        assert!(!ratio.should_sample(None, &trace));
        assert!(ratio.should_sample(Some(&parent(true, true)), &trace));
    }
}
