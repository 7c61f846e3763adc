//! Rate limits of the license API: per key, and per client IP for keys that are not found (key
//! enumeration). Rates are per-environment settings, counted per node.

use dashmap::DashMap;
use governor::{DefaultKeyedRateLimiter, Quota};
use keyward_store::Settings;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long an IP that ran out of not-found lookups is refused everything.
const BLOCK: Duration = Duration::from_secs(60);

struct EnvironmentLimits {
    rates: (i64, i64),
    /// Keyed by a hash of the license key, so checking costs no allocation.
    per_key: DefaultKeyedRateLimiter<u64>,
    not_found_per_ip: DefaultKeyedRateLimiter<IpAddr>,
}

impl EnvironmentLimits {
    fn new(settings: &Settings) -> Self {
        let per_minute =
            |n: i64| Quota::per_minute(NonZeroU32::new(n.clamp(1, u32::MAX as i64) as u32).unwrap_or(NonZeroU32::MIN));
        EnvironmentLimits {
            rates: (settings.validate_rate_per_key, settings.not_found_rate_per_ip),
            per_key: DefaultKeyedRateLimiter::dashmap(per_minute(settings.validate_rate_per_key)),
            not_found_per_ip: DefaultKeyedRateLimiter::dashmap(per_minute(settings.not_found_rate_per_ip)),
        }
    }
}

/// A refusal: try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

#[derive(Default)]
pub struct RateLimits {
    by_environment: RwLock<HashMap<String, Arc<EnvironmentLimits>>>,
    blocked_ips: DashMap<IpAddr, Instant>,
    hasher: RandomState,
}

impl RateLimits {
    fn limits(&self, environment: &str, settings: &Settings) -> Arc<EnvironmentLimits> {
        let rates = (settings.validate_rate_per_key, settings.not_found_rate_per_ip);
        if let Some(limits) = self.by_environment.read().unwrap_or_else(|e| e.into_inner()).get(environment) {
            if limits.rates == rates {
                return limits.clone();
            }
        }
        let limits = Arc::new(EnvironmentLimits::new(settings));
        self.by_environment.write().unwrap_or_else(|e| e.into_inner()).insert(environment.to_owned(), limits.clone());
        limits
    }

    /// Refuses a client that recently ran out of not-found lookups.
    pub fn check_ip(&self, ip: Option<IpAddr>) -> Result<(), RetryAfter> {
        let Some(ip) = ip else { return Ok(()) };
        if self.blocked_ips.is_empty() {
            return Ok(());
        }
        match self.blocked_ips.get(&ip).map(|until| *until) {
            Some(until) if until > Instant::now() => {
                Err(RetryAfter(until.duration_since(Instant::now()).as_secs().max(1)))
            }
            Some(_) => {
                self.blocked_ips.remove(&ip);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts one request for a known key.
    pub fn check_key(&self, environment: &str, settings: &Settings, key: &str) -> Result<(), RetryAfter> {
        let limits = self.limits(environment, settings);
        limits.per_key.check_key(&self.hasher.hash_one(key)).map_err(|not_until| {
            RetryAfter(
                not_until
                    .wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()))
                    .as_secs()
                    .max(1),
            )
        })
    }

    /// Counts one lookup of an unknown key; past the rate the IP is refused everything for a while.
    pub fn check_not_found(
        &self,
        environment: &str,
        settings: &Settings,
        ip: Option<IpAddr>,
    ) -> Result<(), RetryAfter> {
        let Some(ip) = ip else { return Ok(()) };
        let limits = self.limits(environment, settings);
        if limits.not_found_per_ip.check_key(&ip).is_err() {
            self.blocked_ips.insert(ip, Instant::now() + BLOCK);
            return Err(RetryAfter(BLOCK.as_secs()));
        }
        Ok(())
    }

    /// Drops the state of keys and IPs that have been quiet (called now and then).
    pub fn forget_quiet(&self) {
        for limits in self.by_environment.read().unwrap_or_else(|e| e.into_inner()).values() {
            limits.per_key.retain_recent();
            limits.not_found_per_ip.retain_recent();
        }
        let now = Instant::now();
        self.blocked_ips.retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_unknown_lookups_are_limited() {
        let limits = RateLimits::default();
        let settings = Settings { validate_rate_per_key: 3, not_found_rate_per_ip: 2, ..Settings::default() };
        for _ in 0..3 {
            assert!(limits.check_key("production", &settings, "KEY-A").is_ok());
        }
        assert!(limits.check_key("production", &settings, "KEY-A").is_err());
        assert!(limits.check_key("production", &settings, "KEY-B").is_ok(), "keys are counted apart");
        assert!(limits.check_key("staging", &settings, "KEY-A").is_ok(), "environments are counted apart");

        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(limits.check_ip(Some(ip)).is_ok());
        assert!(limits.check_not_found("production", &settings, Some(ip)).is_ok());
        assert!(limits.check_not_found("production", &settings, Some(ip)).is_ok());
        assert_eq!(limits.check_not_found("production", &settings, Some(ip)), Err(RetryAfter(60)));
        assert!(limits.check_ip(Some(ip)).is_err(), "an enumerating IP is refused everything");
        assert!(limits.check_ip(Some("10.9.9.9".parse().unwrap())).is_ok());

        let raised = Settings { validate_rate_per_key: 100, ..settings };
        assert!(limits.check_key("production", &raised, "KEY-A").is_ok(), "new rates apply at once");
    }
}
