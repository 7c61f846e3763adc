//! Values parsed once at the boundary and trusted after: limits, metadata, fingerprints, emails.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// Why a value was refused; the caller names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

fn invalid(message: impl Into<String>) -> InvalidValue {
    InvalidValue(message.into())
}

/// `-1` (unlimited) or 1 to 10,000 devices or sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct ActivationLimit(i64);

impl ActivationLimit {
    pub const UNLIMITED: ActivationLimit = ActivationLimit(-1);
    pub const MAX: i64 = 10_000;

    pub fn parse(n: i64) -> Result<Self, InvalidValue> {
        if n == -1 || (1..=Self::MAX).contains(&n) {
            Ok(ActivationLimit(n))
        } else {
            Err(invalid(format!("must be -1 (unlimited) or between 1 and {}", Self::MAX)))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// True when `count` activations leave room for one more.
    pub fn has_room_for_another(self, count: usize) -> bool {
        self.0 == -1 || (count as i64) < self.0
    }
}

impl TryFrom<i64> for ActivationLimit {
    type Error = InvalidValue;
    fn try_from(n: i64) -> Result<Self, Self::Error> {
        Self::parse(n)
    }
}

impl From<ActivationLimit> for i64 {
    fn from(limit: ActivationLimit) -> i64 {
        limit.0
    }
}

/// A JSON object of at most 10 KB, serialised.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Metadata(Map<String, Value>);

impl Metadata {
    pub const MAX_BYTES: usize = 10 * 1024;

    pub fn parse(value: Value) -> Result<Self, InvalidValue> {
        let Value::Object(map) = value else {
            return Err(invalid("must be a JSON object"));
        };
        let size = serde_json::to_vec(&map).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > Self::MAX_BYTES {
            return Err(invalid(format!("is {size} bytes; at most {} are allowed", Self::MAX_BYTES)));
        }
        Ok(Metadata(map))
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// Feature flags: a JSON object the vendor's app reads (`{"pro": true, "seats": 5}`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FeatureFlags(Map<String, Value>);

impl FeatureFlags {
    pub fn parse(value: Value) -> Result<Self, InvalidValue> {
        match value {
            Value::Object(map) if serde_json::to_vec(&map).is_ok_and(|v| v.len() <= Metadata::MAX_BYTES) => {
                Ok(FeatureFlags(map))
            }
            Value::Object(_) => Err(invalid(format!("must be at most {} bytes", Metadata::MAX_BYTES))),
            _ => Err(invalid("must be a JSON object")),
        }
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

/// A device's identity as the vendor's app computes it: 1 to 255 printable characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        if s.is_empty() || s.len() > 255 {
            return Err(invalid("must be 1 to 255 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(invalid("must not contain control characters"));
        }
        Ok(Fingerprint(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A site's domain for a site license, lower-cased, without scheme, port or trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Domain(String);

impl Domain {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim().to_ascii_lowercase();
        let s = s.trim_end_matches('.');
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if s.is_empty() || s.len() > 253 || !s.split('.').all(valid_label) {
            return Err(invalid("must be a domain name such as `shop.example.com`"));
        }
        Ok(Domain(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A customer's email address, lower-cased so that uniqueness ignores case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim().to_lowercase();
        let well_formed = s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if well_formed {
            Ok(Email(s))
        } else {
            Err(invalid("must be an email address such as `ana@example.com`"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name: 1 to 200 characters after trimming.
pub fn parse_name(s: &str) -> Result<String, InvalidValue> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 200 {
        return Err(invalid("must be 1 to 200 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters"));
    }
    Ok(s.to_owned())
}

/// An environment's name as it appears in URLs: 1 to 32 of `a-z 0-9 -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(transparent)]
pub struct EnvironmentName(String);

impl EnvironmentName {
    pub const PRODUCTION: &'static str = "production";
    pub const STAGING: &'static str = "staging";

    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-');
        if ok {
            Ok(EnvironmentName(s.to_owned()))
        } else {
            Err(invalid("must be 1 to 32 characters of a-z, 0-9 and -"))
        }
    }

    pub fn production() -> Self {
        EnvironmentName(Self::PRODUCTION.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvironmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The first 8 characters of a key: all of it that may appear in a log line.
pub fn redact_key(key: &str) -> String {
    let shown: String = key.chars().take(8).collect();
    format!("{shown}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn activation_limits() {
        assert!(ActivationLimit::parse(-1).is_ok());
        assert!(ActivationLimit::parse(1).is_ok());
        assert!(ActivationLimit::parse(10_000).is_ok());
        for bad in [0, -2, 10_001, i64::MIN, i64::MAX] {
            assert!(ActivationLimit::parse(bad).is_err(), "{bad}");
        }
        assert!(ActivationLimit::UNLIMITED.has_room_for_another(1_000_000));
        assert!(!ActivationLimit::parse(2).unwrap().has_room_for_another(2));
    }

    #[test]
    fn metadata_is_an_object_of_at_most_10kb() {
        assert!(Metadata::parse(json!({"a": 1})).is_ok());
        assert!(Metadata::parse(json!([1])).is_err());
        assert!(Metadata::parse(json!({"a": "x".repeat(10 * 1024)})).is_err());
    }

    #[test]
    fn emails_domains_fingerprints() {
        assert_eq!(Email::parse(" Ana@Example.COM ").unwrap().as_str(), "ana@example.com");
        for bad in ["", "ana", "ana@", "@x.com", "a b@x.com", "ana@localhost"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Domain::parse("Shop.Example.com.").unwrap().as_str(), "shop.example.com");
        assert!(Domain::parse("https://x.com").is_err());
        assert!(Fingerprint::parse("").is_err());
        assert!(Fingerprint::parse(&"f".repeat(256)).is_err());
        assert_eq!(redact_key("ABCDEFGHIJKLMNOP"), "ABCDEFGH…");
    }
}
