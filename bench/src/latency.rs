//! One wrk run as `bench/wrk/*.lua` prints it, and latency percentiles over several runs (two
//! nodes driven at once, or several rounds), merged by their request-weighted distributions.

use anyhow::Context;
use serde::Deserialize;
use std::path::Path;

/// The `WRKJSON {…}` line a wrk script's `done()` prints.
#[derive(Debug, Clone, Deserialize)]
pub struct WrkRun {
    pub requests: u64,
    pub duration_us: u64,
    pub bytes: u64,
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub status: u64,
    pub timeout: u64,
    pub min_us: f64,
    pub max_us: f64,
    /// `[percent, microseconds]`, percent ascending.
    pub percentiles: Vec<(f64, f64)>,
}

impl WrkRun {
    pub fn from_output(path: &Path) -> anyhow::Result<WrkRun> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let line = text
            .lines()
            .find_map(|line| line.strip_prefix("WRKJSON "))
            .with_context(|| format!("{} has no WRKJSON line (did wrk fail?)", path.display()))?;
        serde_json::from_str(line).with_context(|| format!("{}: malformed WRKJSON line", path.display()))
    }

    pub fn per_second(&self) -> f64 {
        self.requests as f64 / (self.duration_us.max(1) as f64 / 1e6)
    }

    /// Socket errors, timeouts and answers that are not 2xx or 3xx.
    pub fn errors(&self) -> u64 {
        self.connect + self.read + self.write + self.status + self.timeout
    }

    /// The fraction of requests that took at most `x` µs, interpolated between the percentiles.
    fn cdf(&self, x: f64) -> f64 {
        let mut points = Vec::with_capacity(self.percentiles.len() + 2);
        points.push((0.0, self.min_us));
        points.extend(self.percentiles.iter().copied());
        points.push((100.0, self.max_us));
        let below = points.iter().rposition(|&(_, v)| v <= x);
        let fraction = match below {
            None => 0.0,
            Some(k) if k + 1 == points.len() => 100.0,
            Some(k) => {
                let (p_lo, v_lo) = points[k];
                let (p_hi, v_hi) = points[k + 1];
                p_lo + (p_hi - p_lo) * (x - v_lo) / (v_hi - v_lo).max(f64::MIN_POSITIVE)
            }
        };
        fraction / 100.0
    }
}

/// The `percent` percentile, in µs, of all the requests of `runs` together.
pub fn merged_percentile(runs: &[&WrkRun], percent: f64) -> f64 {
    let total: u64 = runs.iter().map(|r| r.requests).sum();
    if runs.is_empty() || total == 0 {
        return f64::NAN;
    }
    let target = percent / 100.0;
    let cdf = |x: f64| runs.iter().map(|r| r.requests as f64 * r.cdf(x)).sum::<f64>() / total as f64;
    let mut lo = runs.iter().map(|r| r.min_us).fold(f64::INFINITY, f64::min);
    let mut hi = runs.iter().map(|r| r.max_us).fold(0.0, f64::max);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if cdf(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(requests: u64, scale: f64) -> WrkRun {
        WrkRun {
            requests,
            duration_us: 1_000_000,
            bytes: 0,
            connect: 0,
            read: 0,
            write: 0,
            status: 0,
            timeout: 0,
            min_us: scale,
            max_us: 100.0 * scale,
            percentiles: (1..100).map(|p| (f64::from(p), f64::from(p) * scale)).collect(),
        }
    }

    #[test]
    fn one_run_keeps_its_percentiles() {
        let one = run(1000, 10.0);
        for p in [50.0, 90.0, 99.0] {
            assert!((merged_percentile(&[&one], p) - p * 10.0).abs() < 0.01, "p{p}");
        }
    }

    #[test]
    fn runs_merge_by_their_weights() {
        let fast = run(1000, 1.0);
        let slow = run(1000, 1000.0);
        // Half the requests took 1..100 µs, half 1 ms..100 ms: the median sits at their border.
        let median = merged_percentile(&[&fast, &slow], 50.0);
        assert!((100.0..=1000.0).contains(&median), "{median}");
        assert!(merged_percentile(&[&fast, &slow], 99.0) > 90_000.0);
        // Equal distributions merge into the same one.
        assert!((merged_percentile(&[&fast, &fast], 99.0) - 99.0).abs() < 0.01);
    }
}
