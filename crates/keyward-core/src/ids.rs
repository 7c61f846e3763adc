//! Record ids: a readable prefix, the time of creation and 80 random bits, e.g. `lic_019ad3…`.

use rand::RngCore;

/// The kinds of record that get an id, each with its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Product,
    Generator,
    Customer,
    License,
    Activation,
    Token,
    AuditEvent,
    Job,
}

impl IdKind {
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Product => "prod",
            IdKind::Generator => "gen",
            IdKind::Customer => "cus",
            IdKind::License => "lic",
            IdKind::Activation => "act",
            IdKind::Token => "tok",
            IdKind::AuditEvent => "evt",
            IdKind::Job => "job",
        }
    }
}

/// A fresh id of this kind: 48 bits of milliseconds since 1970, then 80 random bits, in hex.
/// Time first, so that new records land at the end of every index that ends with the id
/// (bulk generation of a million licenses writes those indexes in order, not all over them).
pub fn new_id(kind: IdKind) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64);
    let mut random = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut random);
    let mut id = String::with_capacity(kind.prefix().len() + 33);
    id.push_str(kind.prefix());
    id.push('_');
    id.push_str(&format!("{:012x}", millis & 0xffff_ffff_ffff));
    for b in random {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// True when `s` looks like an id of this kind (used to tell an id from a key in `{id}` paths).
pub fn is_id(kind: IdKind, s: &str) -> bool {
    s.strip_prefix(kind.prefix())
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_are_recognised() {
        let id = new_id(IdKind::License);
        assert!(id.starts_with("lic_"));
        assert!(is_id(IdKind::License, &id));
        assert!(!is_id(IdKind::Product, &id));
        assert_ne!(id, new_id(IdKind::License));
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let earlier = new_id(IdKind::License);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = new_id(IdKind::License);
        assert!(earlier < later, "{earlier} then {later}");
        // Eighty random bits after the time: ids of one millisecond differ too.
        let same_moment: std::collections::HashSet<String> = (0..1000).map(|_| new_id(IdKind::License)).collect();
        assert_eq!(same_moment.len(), 1000);
    }
}
