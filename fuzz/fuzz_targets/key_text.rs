//! Arbitrary text as a license key (the typo checks) and as a sealed secret.
#![no_main]

use keyward_core::key::{key_looks_valid, normalize_crockford, KeyFormat};
use keyward_core::seal::unseal;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static FORMATS: LazyLock<Vec<KeyFormat>> = LazyLock::new(|| {
    vec![
        KeyFormat::Uuid,
        KeyFormat::Chunked { prefix: None, groups: 4, group_length: 5, alphabet: None },
        KeyFormat::Chunked { prefix: Some("ACME".into()), groups: 2, group_length: 2, alphabet: None },
        KeyFormat::Chunked {
            prefix: Some("k".into()),
            groups: 3,
            group_length: 4,
            alphabet: Some("abcdefgh23456789!#$%&*+=".into()),
        },
        KeyFormat::Pattern { template: "ACME-{5}-{5}.{3}".into() },
    ]
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let valid = key_looks_valid(text);
    // A normalized key is judged like the key itself (but for 36 bytes: `o`/`l` may turn a text
    // into a UUID's shape, which is looked at before normalizing).
    if text.len() != 36 {
        assert_eq!(valid, key_looks_valid(&normalize_crockford(text)), "{text:?}");
    }
    for format in FORMATS.iter() {
        let _ = format.looks_valid(text);
    }
    let _ = unseal(&[5; 32], text);
});
