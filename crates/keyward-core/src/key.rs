//! License key formats: `uuid`, `chunked` (random groups and a check group), `pattern`.
//!
//! # The check group of a chunked key
//!
//! A chunked key is `[PREFIX-]G1-G2-…-Gg-C`: `g` groups of `L` random symbols of the alphabet, then
//! the check group `C`, also `L` symbols of the alphabet. `C` is a function of the text `T` before
//! it, that is everything before the last `-` (prefix and dashes included). With the default
//! (Crockford) alphabet the key is first normalized: ASCII letters upper-cased, `I` and `L` read as
//! `1`, `O` read as `0`, so `T` is normalized too. With `a` symbols in the alphabet:
//!
//! - each byte `t` of `T` has a value `v(t)`: its index in the alphabet; `a` for `-`; `a + 1` for
//!   anything else (a prefix character outside the alphabet); and `u = v + 1` (never zero);
//! - `p` is the smallest prime above `a + 2` (37 for Crockford);
//! - `S1 = Σ u_i mod p` and `S2 = Σ w_i·u_i mod p`, `i` counting from 1 and `w_i = 1 + (i - 1) mod (p - 1)`;
//! - for `L = 2`, `C` is `S2` written in base `a` (two digits, most significant first);
//! - for `L ≥ 3`, `C` starts with `S1·p + S2` written in base `a` (three digits), and its other
//!   `L - 3` symbols are `alphabet[h_j mod a]`, `h` being the SHA-256 digest of `T`.
//!
//! What it catches, with no chance involved: any substitution of one symbol (`S1` changes by the
//! difference of two values, less than `p`), any transposition of two different adjacent characters
//! (`S2` changes by `(w_i - w_i+1)·(u_i+1 - u_i)`, a product of non-zero numbers modulo a prime),
//! any change inside the check group, and for `L ≥ 3` any inserted or deleted character of `T`
//! (`S1` changes by one `u`, between 1 and `p - 1`). Other damage slips through about once in
//! `p²·a^(L-3)` (`p` for `L = 2`); the shape rules of [`key_looks_valid`] catch most of it first.
//! `docs/offline-licensing.md` walks through an example.

use crate::values::InvalidValue;
use rand::{CryptoRng, Rng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Crockford's base32: no I, L, O or U, so no 1/I or 0/O confusion.
pub const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Keys with fewer random bits than this get a warning from [`KeyFormat::check`].
pub const RECOMMENDED_ENTROPY_BITS: f64 = 100.0;

/// Bits of randomness in a UUID v4 (128 bits less the version and variant).
pub const UUID_ENTROPY_BITS: f64 = 122.0;

const GROUPS: std::ops::RangeInclusive<u32> = 1..=16;
const GROUP_LENGTH: std::ops::RangeInclusive<u32> = 2..=16;
const ALPHABET_SIZE: std::ops::RangeInclusive<usize> = 16..=64;
const PREFIX_LENGTH: std::ops::RangeInclusive<usize> = 1..=16;
const TEMPLATE_LENGTH: std::ops::RangeInclusive<usize> = 1..=128;
const PLACEHOLDER_SIZE: std::ops::RangeInclusive<usize> = 1..=64;

/// How a generator makes keys. `{"type": "chunked", "prefix": "ACME", "groups": 5, "group_length": 5}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyFormat {
    Uuid,
    Chunked {
        #[serde(default)]
        prefix: Option<String>,
        /// Random groups, not counting the check group.
        groups: u32,
        group_length: u32,
        /// Defaults to Crockford base32.
        #[serde(default)]
        alphabet: Option<String>,
    },
    /// `ACME-{5}-{5}-{5}`: `{n}` is n random symbols of Crockford base32.
    Pattern {
        template: String,
    },
}

/// A format that passed its checks, with how much randomness each key carries.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatCheck {
    pub entropy_bits: f64,
    /// Set when the vendor deliberately shrank a key below 100 random bits.
    pub warning: Option<String>,
}

/// A format whose parameters passed their checks.
enum Spec<'a> {
    Uuid,
    Chunked(Chunked<'a>),
    Pattern(Vec<Piece<'a>>),
}

struct Chunked<'a> {
    prefix: Option<&'a str>,
    groups: usize,
    group_length: usize,
    alphabet: &'a [u8],
    /// The default alphabet: keys are read with Crockford's rules (case, I/L/O).
    crockford: bool,
}

enum Piece<'a> {
    Literal(&'a str),
    Random(usize),
}

impl KeyFormat {
    /// Checks the format's parameters (lengths, alphabet, template) and measures its entropy.
    pub fn check(&self) -> Result<FormatCheck, InvalidValue> {
        let entropy_bits = match self.spec()? {
            Spec::Uuid => UUID_ENTROPY_BITS,
            Spec::Chunked(c) => (c.groups * c.group_length) as f64 * (c.alphabet.len() as f64).log2(),
            Spec::Pattern(pieces) => {
                let symbols: usize = pieces.iter().map(|p| if let Piece::Random(n) = p { *n } else { 0 }).sum();
                symbols as f64 * (CROCKFORD.len() as f64).log2()
            }
        };
        let warning = (entropy_bits < RECOMMENDED_ENTROPY_BITS).then(|| {
            format!(
                "keys carry only {} random bits; {RECOMMENDED_ENTROPY_BITS} or more are recommended",
                entropy_bits.floor()
            )
        });
        Ok(FormatCheck { entropy_bits, warning })
    }

    /// A fresh key of this format from a CSPRNG. The format must have passed `check`.
    ///
    /// # Panics
    /// When the format does not pass [`KeyFormat::check`].
    pub fn generate<R: RngCore + CryptoRng>(&self, rng: &mut R) -> String {
        let spec = self.spec().unwrap_or_else(|err| panic!("generate needs a format that passes check: {err}"));
        match spec {
            Spec::Uuid => {
                let mut bytes = [0u8; 16];
                rng.fill_bytes(&mut bytes);
                uuid::Builder::from_random_bytes(bytes).into_uuid().hyphenated().to_string()
            }
            Spec::Chunked(c) => c.generate(rng),
            Spec::Pattern(pieces) => {
                let mut key = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Literal(text) => key.push_str(text),
                        Piece::Random(n) => push_random(&mut key, CROCKFORD.as_bytes(), n, rng),
                    }
                }
                key
            }
        }
    }

    /// True when `key` could have been made by this format (checksum included, for chunked).
    pub fn looks_valid(&self, key: &str) -> bool {
        match self.spec() {
            Ok(Spec::Uuid) => is_canonical_uuid_v4(key),
            Ok(Spec::Chunked(c)) => c.looks_valid(key),
            Ok(Spec::Pattern(pieces)) => pattern_matches(&pieces, key),
            Err(_) => false,
        }
    }

    /// True when [`key_looks_valid`] accepts every key this format can make, so an app may use it
    /// as a typo check. False for a custom alphabet or a pattern whose keys can look like
    /// default-alphabet chunked keys (such as `ACME-{5}-{5}-{5}`): the SDK cannot tell them apart
    /// and would take them for mistyped ones. Also false for a format that fails its checks.
    pub fn works_with_typo_check(&self) -> bool {
        match self.spec() {
            Ok(Spec::Uuid) => true,
            Ok(Spec::Chunked(c)) => c.crockford || !c.alphabet.iter().any(|&s| reads_as_crockford(s)),
            Ok(Spec::Pattern(pieces)) => !pattern_can_look_chunked(&pieces),
            Err(_) => false,
        }
    }

    fn spec(&self) -> Result<Spec<'_>, InvalidValue> {
        match self {
            KeyFormat::Uuid => Ok(Spec::Uuid),
            KeyFormat::Chunked { prefix, groups, group_length, alphabet } => {
                chunked_spec(prefix.as_deref(), *groups, *group_length, alphabet.as_deref()).map(Spec::Chunked)
            }
            KeyFormat::Pattern { template } => parse_template(template).map(Spec::Pattern),
        }
    }
}

/// The SDK's typo check with no request: for a chunked key in the default alphabet, the check
/// group must match; keys of other formats are let through (the server decides).
///
/// The rule, after Crockford normalization (upper case, `I`/`L` → `1`, `O` → `0`), with the key
/// split at `-` into groups:
/// 1. a UUID (8-4-4-4-12 hex digits, any case) passes;
/// 2. a key with fewer than two groups of the same length (2 to 16) made only of Crockford
///    symbols does not look chunked, and passes;
/// 3. any other key is taken for a chunked key and passes only when it has exactly that shape
///    (the last group and every group after the first of one length `L` in Crockford symbols; the
///    first group either one more such group, or, with three groups or more, a prefix of 1 to 16
///    letters and digits) and its check group matches.
///
/// So a key of three or more random groups of three or more symbols is refused after any single
/// typo, even one that breaks its shape. Keys of other formats that happen to fall under rule 3 are refused too:
/// [`KeyFormat::works_with_typo_check`] says whether a generator's keys are safe with it.
pub fn key_looks_valid(key: &str) -> bool {
    if is_uuid_shaped(key) {
        return true;
    }
    let normalized = normalize_crockford(key);
    let groups: Vec<&str> = normalized.split('-').collect();
    if !shows_chunked_groups(&groups) {
        return true;
    }
    let Some((first, rest)) = groups.split_first() else { return true };
    let Some(check) = rest.last() else { return false };
    let length = check.len();
    let is_group = |group: &str| group.len() == length && is_crockford_text(group);
    let shape = GROUP_LENGTH.contains(&(length as u32))
        && rest.iter().all(|group| is_group(group))
        && (is_group(first) || (rest.len() >= 2 && is_prefix(first)));
    if !shape {
        return false;
    }
    let text = &normalized[..normalized.len() - length - 1];
    check_group(CROCKFORD.as_bytes(), text.as_bytes(), length) == check.as_bytes()
}

/// A key read with Crockford's rules: ASCII letters upper-cased, `I` and `L` as `1`, `O` as `0`.
/// Two keys of the default alphabet that normalize alike are the same key (a server may look a
/// key up again in this form when the exact text is not found).
pub fn normalize_crockford(key: &str) -> String {
    key.chars().map(|c| crockford_char(c.to_ascii_uppercase())).collect()
}

fn crockford_char(c: char) -> char {
    match c {
        'I' | 'L' => '1',
        'O' => '0',
        other => other,
    }
}

/// True when the ASCII byte `symbol` reads as a Crockford symbol after normalization.
fn reads_as_crockford(symbol: u8) -> bool {
    let c = crockford_char((symbol as char).to_ascii_uppercase());
    c.is_ascii() && CROCKFORD.as_bytes().contains(&(c as u8))
}

fn is_crockford_text(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| CROCKFORD.as_bytes().contains(&b))
}

fn is_prefix(text: &str) -> bool {
    PREFIX_LENGTH.contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Two groups of one length (2 to 16) made only of Crockford symbols: the key looks chunked.
fn shows_chunked_groups(groups: &[&str]) -> bool {
    let mut seen = [false; 17];
    for group in groups {
        let length = group.len();
        if GROUP_LENGTH.contains(&(length as u32)) && is_crockford_text(group) {
            if seen[length] {
                return true;
            }
            seen[length] = true;
        }
    }
    false
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in hex digits of any case, any version.
fn is_uuid_shaped(key: &str) -> bool {
    key.len() == 36
        && key.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// What `generate` makes: lower-case, hyphenated, version 4, RFC 4122 variant.
fn is_canonical_uuid_v4(key: &str) -> bool {
    let bytes = key.as_bytes();
    is_uuid_shaped(key)
        && !bytes.iter().any(u8::is_ascii_uppercase)
        && bytes[14] == b'4'
        && matches!(bytes[19], b'8' | b'9' | b'a' | b'b')
}

fn push_random<R: RngCore + CryptoRng>(out: &mut String, alphabet: &[u8], count: usize, rng: &mut R) {
    for _ in 0..count {
        out.push(alphabet[rng.gen_range(0..alphabet.len())] as char);
    }
}

fn chunked_spec<'a>(
    prefix: Option<&'a str>,
    groups: u32,
    group_length: u32,
    alphabet: Option<&'a str>,
) -> Result<Chunked<'a>, InvalidValue> {
    if !GROUPS.contains(&groups) {
        return Err(InvalidValue(format!(
            "groups must be between {} and {} (random groups, not counting the check group)",
            GROUPS.start(),
            GROUPS.end()
        )));
    }
    if !GROUP_LENGTH.contains(&group_length) {
        return Err(InvalidValue(format!(
            "group_length must be between {} and {}",
            GROUP_LENGTH.start(),
            GROUP_LENGTH.end()
        )));
    }
    let symbols = alphabet.unwrap_or(CROCKFORD);
    if let Some(bad) = symbols.chars().find(|&c| !c.is_ascii_graphic() || c == '-') {
        return Err(InvalidValue(format!(
            "alphabet may only hold visible ASCII characters other than `-` (found {bad:?})"
        )));
    }
    if !ALPHABET_SIZE.contains(&symbols.len()) {
        return Err(InvalidValue(format!(
            "alphabet must have between {} and {} symbols (it has {})",
            ALPHABET_SIZE.start(),
            ALPHABET_SIZE.end(),
            symbols.len()
        )));
    }
    let bytes = symbols.as_bytes();
    if let Some((i, &repeated)) = bytes.iter().enumerate().find(|(i, b)| bytes[..*i].contains(b)) {
        return Err(InvalidValue(format!(
            "alphabet repeats the symbol `{}` (at position {})",
            repeated as char,
            i + 1
        )));
    }
    if let Some(prefix) = prefix {
        if !is_prefix(prefix) {
            return Err(InvalidValue(format!(
                "prefix must be {} to {} letters or digits (A-Z, a-z, 0-9); leave it out for none",
                PREFIX_LENGTH.start(),
                PREFIX_LENGTH.end()
            )));
        }
    }
    debug_assert!(check_group_fits(bytes.len(), group_length as usize));
    Ok(Chunked {
        prefix,
        groups: groups as usize,
        group_length: group_length as usize,
        alphabet: bytes,
        crockford: symbols == CROCKFORD,
    })
}

impl Chunked<'_> {
    fn generate<R: RngCore + CryptoRng>(&self, rng: &mut R) -> String {
        let mut key = String::with_capacity((self.groups + 2) * (self.group_length + 1) + 16);
        if let Some(prefix) = self.prefix {
            key.push_str(prefix);
            key.push('-');
        }
        for group in 0..self.groups {
            if group > 0 {
                key.push('-');
            }
            push_random(&mut key, self.alphabet, self.group_length, rng);
        }
        let text = if self.crockford { normalize_crockford(&key) } else { key.clone() };
        let check = check_group(self.alphabet, text.as_bytes(), self.group_length);
        key.push('-');
        key.extend(check.iter().map(|&b| b as char));
        key
    }

    fn looks_valid(&self, key: &str) -> bool {
        let (key, prefix) = if self.crockford {
            (normalize_crockford(key), self.prefix.map(normalize_crockford))
        } else {
            (key.to_owned(), self.prefix.map(str::to_owned))
        };
        let mut groups = key.split('-');
        if let Some(prefix) = &prefix {
            if groups.next() != Some(prefix.as_str()) {
                return false;
            }
        }
        let groups: Vec<&str> = groups.collect();
        let fits = |group: &&str| group.len() == self.group_length && group.bytes().all(|b| self.alphabet.contains(&b));
        if groups.len() != self.groups + 1 || !groups.iter().all(fits) {
            return false;
        }
        let text = &key[..key.len() - self.group_length - 1];
        check_group(self.alphabet, text.as_bytes(), self.group_length) == groups[self.groups].as_bytes()
    }
}

/// The primes a check group can work modulo: alphabets have 16 to 64 symbols.
const CHECK_PRIMES: [usize; 12] = [19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67];

/// The smallest prime above `alphabet_size + 2`: every `u` of the check group is non-zero below it.
fn check_modulus(alphabet_size: usize) -> usize {
    CHECK_PRIMES.into_iter().find(|&p| p > alphabet_size + 2).unwrap_or(CHECK_PRIMES[CHECK_PRIMES.len() - 1])
}

/// The check group can write its sums: `p` in two symbols, `p²` in three.
fn check_group_fits(alphabet_size: usize, group_length: usize) -> bool {
    let p = check_modulus(alphabet_size);
    match group_length {
        0 | 1 => false,
        2 => p <= alphabet_size.pow(2),
        _ => p * p <= alphabet_size.pow(3),
    }
}

/// The check group of `text` (the normalized key before its last `-`); see the module comment.
fn check_group(alphabet: &[u8], text: &[u8], length: usize) -> Vec<u8> {
    let a = alphabet.len();
    let p = check_modulus(a);
    let value = |byte: u8| match alphabet.iter().position(|&s| s == byte) {
        Some(index) => index,
        None if byte == b'-' => a,
        None => a + 1,
    };
    let (mut s1, mut s2) = (0, 0);
    for (i, &byte) in text.iter().enumerate() {
        let u = value(byte) + 1;
        let w = 1 + i % (p - 1);
        s1 = (s1 + u) % p;
        s2 = (s2 + w * u) % p;
    }
    let mut check = Vec::with_capacity(length);
    if length < 3 {
        check.extend([alphabet[s2 / a % a], alphabet[s2 % a]]);
    } else {
        let x = s1 * p + s2;
        check.extend([alphabet[x / (a * a) % a], alphabet[x / a % a], alphabet[x % a]]);
        let digest = Sha256::digest(text);
        check.extend(digest.iter().take(length - 3).map(|&h| alphabet[h as usize % a]));
    }
    check
}

fn parse_template(template: &str) -> Result<Vec<Piece<'_>>, InvalidValue> {
    let length = template.chars().count();
    if !TEMPLATE_LENGTH.contains(&length) {
        return Err(InvalidValue(format!(
            "template must be {} to {} characters long",
            TEMPLATE_LENGTH.start(),
            TEMPLATE_LENGTH.end()
        )));
    }
    if let Some(bad) = template.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(InvalidValue(format!("template may only hold visible ASCII characters (found {bad:?})")));
    }
    let mut pieces = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            Some(0) if rest.starts_with('}') => {
                return Err(InvalidValue("template has a `}` without a `{` before it".into()));
            }
            Some(0) => {
                let close =
                    rest.find('}').ok_or_else(|| InvalidValue("template has a `{` without a `}` after it".into()))?;
                let inside = &rest[1..close];
                let n = parse_placeholder(inside).ok_or_else(|| {
                    InvalidValue(format!(
                        "`{{{inside}}}` in the template must be `{{n}}` with n from {} to {}",
                        PLACEHOLDER_SIZE.start(),
                        PLACEHOLDER_SIZE.end()
                    ))
                })?;
                pieces.push(Piece::Random(n));
                rest = &rest[close + 1..];
            }
            Some(at) => {
                pieces.push(Piece::Literal(&rest[..at]));
                rest = &rest[at..];
            }
            None => {
                pieces.push(Piece::Literal(rest));
                rest = "";
            }
        }
    }
    if !pieces.iter().any(|p| matches!(p, Piece::Random(_))) {
        return Err(InvalidValue("template needs at least one `{n}` (n random symbols)".into()));
    }
    Ok(pieces)
}

/// `n` of `{n}`: a number from 1 to 64 written without leading zeros.
fn parse_placeholder(inside: &str) -> Option<usize> {
    if inside.is_empty() || inside.len() > 2 || inside.starts_with('0') || !inside.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    inside.parse().ok().filter(|n| PLACEHOLDER_SIZE.contains(n))
}

fn pattern_matches(pieces: &[Piece<'_>], key: &str) -> bool {
    let mut rest = key.as_bytes();
    for piece in pieces {
        match piece {
            Piece::Literal(text) => match rest.strip_prefix(text.as_bytes()) {
                Some(after) => rest = after,
                None => return false,
            },
            Piece::Random(n) => {
                if rest.len() < *n || !rest[..*n].iter().all(|b| CROCKFORD.as_bytes().contains(b)) {
                    return false;
                }
                rest = &rest[*n..];
            }
        }
    }
    rest.is_empty()
}

/// True when some key of the pattern has two `-` groups of one length made only of symbols that
/// read as Crockford: [`key_looks_valid`] would take such a key for a chunked one.
fn pattern_can_look_chunked(pieces: &[Piece<'_>]) -> bool {
    // (length, every character can read as Crockford) of each `-` group of a key.
    let mut groups = vec![(0usize, true)];
    for piece in pieces {
        match piece {
            Piece::Random(n) => groups.last_mut().expect("never empty").0 += n,
            Piece::Literal(text) => {
                for byte in text.bytes() {
                    let current = groups.last_mut().expect("never empty");
                    if byte == b'-' {
                        groups.push((0, true));
                    } else {
                        current.0 += 1;
                        current.1 &= reads_as_crockford(byte);
                    }
                }
            }
        }
    }
    let mut seen = [false; 17];
    groups.iter().filter(|(length, crockford)| *crockford && GROUP_LENGTH.contains(&(*length as u32))).any(
        |(length, _)| {
            let twice = seen[*length];
            seen[*length] = true;
            twice
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::HashSet;

    fn chunked(prefix: Option<&str>, groups: u32, group_length: u32, alphabet: Option<&str>) -> KeyFormat {
        KeyFormat::Chunked {
            prefix: prefix.map(str::to_owned),
            groups,
            group_length,
            alphabet: alphabet.map(str::to_owned),
        }
    }

    fn pattern(template: &str) -> KeyFormat {
        KeyFormat::Pattern { template: template.into() }
    }

    fn message(format: &KeyFormat) -> String {
        format.check().expect_err("the format should be refused").0
    }

    /// A custom alphabet with symbols outside Crockford's, some of them punctuation.
    const CUSTOM: &str = "abcdefghijkmnpqrstuvwxyz23456789!#$%&*+=?@";

    #[test]
    fn entropy_is_measured_and_small_keys_warn() {
        let uuid = KeyFormat::Uuid.check().unwrap();
        assert_eq!((uuid.entropy_bits, uuid.warning), (122.0, None));

        let default = chunked(None, 4, 5, None).check().unwrap();
        assert_eq!((default.entropy_bits, default.warning), (100.0, None));

        let small = chunked(Some("ACME"), 3, 5, None).check().unwrap();
        assert_eq!(small.entropy_bits, 75.0);
        assert_eq!(small.warning.as_deref(), Some("keys carry only 75 random bits; 100 or more are recommended"));

        let hex = chunked(None, 4, 6, Some("0123456789abcdef")).check().unwrap();
        assert_eq!(hex.entropy_bits, 96.0);
        assert!(hex.warning.unwrap().contains("only 96 random bits"));

        let design_example = pattern("ACME-{5}-{5}-{5}").check().unwrap();
        assert_eq!(design_example.entropy_bits, 75.0);
        assert!(design_example.warning.is_some());
        assert_eq!(pattern("K{20}").check().unwrap(), FormatCheck { entropy_bits: 100.0, warning: None });
    }

    #[test]
    fn chunked_parameters_are_checked() {
        assert!(message(&chunked(None, 0, 5, None)).starts_with("groups must be between 1 and 16"));
        assert!(message(&chunked(None, 17, 5, None)).starts_with("groups must be between 1 and 16"));
        assert_eq!(message(&chunked(None, 4, 1, None)), "group_length must be between 2 and 16");
        assert_eq!(message(&chunked(None, 4, 17, None)), "group_length must be between 2 and 16");
        assert!(
            message(&chunked(None, 4, 5, Some("0123456789ABCDE"))).contains("between 16 and 64 symbols (it has 15)")
        );
        assert!(message(&chunked(None, 4, 5, Some(&"x".repeat(65)))).contains("between 16 and 64"));
        assert!(message(&chunked(None, 4, 5, Some("0123456789ABCDE-"))).contains("other than `-`"));
        assert!(message(&chunked(None, 4, 5, Some("0123456789ABCDE "))).contains("visible ASCII"));
        assert!(message(&chunked(None, 4, 5, Some("0123456789ABCDEé"))).contains("visible ASCII"));
        assert_eq!(
            message(&chunked(None, 4, 5, Some("0123456789ABCDEA"))),
            "alphabet repeats the symbol `A` (at position 16)"
        );
        for prefix in ["", "AC-ME", "ACME!", "ÄCME", &"A".repeat(17)] {
            assert!(message(&chunked(Some(prefix), 4, 5, None)).starts_with("prefix must be 1 to 16"), "{prefix:?}");
        }
        for ok in [chunked(Some("a"), 1, 2, None), chunked(Some(&"Z9".repeat(8)), 16, 16, Some(&CUSTOM[..16]))] {
            ok.check().unwrap();
        }
        // The longest alphabet allowed.
        let widest: String = (b'!'..=b'~').filter(|&b| b != b'-').take(64).map(char::from).collect();
        chunked(None, 2, 2, Some(&widest)).check().unwrap();
    }

    #[test]
    #[allow(clippy::manual_is_multiple_of, reason = "is_multiple_of is newer than the workspace's rust-version 1.85")]
    fn every_allowed_check_group_can_write_its_sums() {
        for size in ALPHABET_SIZE {
            for length in GROUP_LENGTH {
                assert!(check_group_fits(size, length as usize), "alphabet of {size}, groups of {length}");
            }
        }
        assert_eq!(check_modulus(32), 37);
        // The table holds every prime of its range, so the first one above `a + 2` is the smallest.
        let is_prime = |n: usize| (2..n).all(|d| n % d != 0);
        assert_eq!(CHECK_PRIMES.to_vec(), (19..=67).filter(|&n| is_prime(n)).collect::<Vec<_>>());
        for size in ALPHABET_SIZE {
            let p = check_modulus(size);
            assert!(p > size + 2 && (size + 3..p).all(|n| !is_prime(n)), "alphabet of {size}");
        }
    }

    #[test]
    fn templates_are_checked() {
        let too_long = "ACME-{5}-{5}-{5}x".repeat(8);
        let cases = [
            ("", "template must be 1 to 128 characters long"),
            (too_long.as_str(), "template must be 1 to 128 characters long"),
            ("ACME", "template needs at least one `{n}` (n random symbols)"),
            ("ACME-{5", "template has a `{` without a `}` after it"),
            ("ACME-5}", "template has a `}` without a `{` before it"),
            ("ACME-{}", "`{}` in the template must be `{n}` with n from 1 to 64"),
            ("ACME-{0}", "`{0}` in the template must be `{n}` with n from 1 to 64"),
            ("ACME-{65}", "`{65}` in the template must be `{n}` with n from 1 to 64"),
            ("ACME-{05}", "`{05}` in the template must be `{n}` with n from 1 to 64"),
            ("ACME-{x}", "`{x}` in the template must be `{n}` with n from 1 to 64"),
            ("ACME-{{5}}", "`{{5}` in the template must be `{n}` with n from 1 to 64"),
            ("ACME {5}", "template may only hold visible ASCII characters (found ' ')"),
            ("ÄCME-{5}", "template may only hold visible ASCII characters (found 'Ä')"),
        ];
        for (template, expected) in cases {
            assert_eq!(message(&pattern(template)), expected, "{template:?}");
        }
        for ok in ["{1}", "{64}", "ACME-{5}-{5}-{5}", "v2.{8}/{8}_x", &"{64}".repeat(32)] {
            pattern(ok).check().unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
    }

    #[test]
    fn formats_read_their_json() {
        let format: KeyFormat =
            serde_json::from_str(r#"{"type": "chunked", "prefix": "ACME", "groups": 5, "group_length": 5}"#).unwrap();
        assert_eq!(format, chunked(Some("ACME"), 5, 5, None));
        let extra = r#"{"type": "chunked", "groups": 4, "group_length": 5, "extra": 1}"#;
        assert!(serde_json::from_str::<KeyFormat>(extra).is_err());
    }

    #[test]
    fn generated_keys_have_their_shape() {
        let mut rng = StdRng::seed_from_u64(1);
        let uuid = KeyFormat::Uuid.generate(&mut rng);
        assert!(is_canonical_uuid_v4(&uuid), "{uuid}");
        assert_eq!(uuid::Uuid::parse_str(&uuid).unwrap().get_version_num(), 4);

        let key = chunked(Some("ACME"), 4, 5, None).generate(&mut rng);
        let groups: Vec<&str> = key.split('-').collect();
        assert_eq!(groups.len(), 6);
        assert_eq!(groups[0], "ACME");
        assert!(groups[1..].iter().all(|g| g.len() == 5 && is_crockford_text(g)), "{key}");

        let key = pattern("v2.{3}/{2}_x").generate(&mut rng);
        assert!(key.starts_with("v2.") && key.ends_with("_x") && key.len() == 11 && &key[6..7] == "/", "{key}");
    }

    #[test]
    #[should_panic(expected = "generate needs a format that passes check")]
    fn generating_from_an_unchecked_format_is_a_bug() {
        chunked(None, 4, 5, Some("")).generate(&mut StdRng::seed_from_u64(1));
    }

    /// Generates `count` keys with an OS-seeded CSPRNG and asserts none repeats.
    fn assert_unique(format: &KeyFormat, count: usize) {
        let mut rng = rand::thread_rng();
        let mut seen = HashSet::with_capacity(count);
        for _ in 0..count {
            let key = format.generate(&mut rng);
            assert!(format.looks_valid(&key), "{format:?} made a key it refuses");
            assert!(seen.insert(key), "{format:?} repeated a key");
        }
    }

    #[test]
    fn a_hundred_thousand_keys_never_repeat() {
        assert_unique(&KeyFormat::Uuid, 100_000);
        assert_unique(&chunked(None, 4, 5, None), 100_000);
        assert_unique(&pattern("ACME-{5}-{5}-{5}-{5}"), 100_000);
    }

    #[test]
    fn crockford_keys_are_read_leniently() {
        let format = chunked(Some("Cloud"), 4, 5, None);
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let key = format.generate(&mut rng);
            assert!(format.looks_valid(&key) && key_looks_valid(&key));
            let lower = key.to_lowercase();
            assert!(format.looks_valid(&lower) && key_looks_valid(&lower), "lower case");
            let confusable = key.replace('1', "l").replace('0', "O");
            assert!(format.looks_valid(&confusable) && key_looks_valid(&confusable), "I/L/O");
            let different_prefix = key.replacen("Cloud", "Claud", 1);
            assert!(!format.looks_valid(&different_prefix) && !key_looks_valid(&different_prefix));
        }
        // A custom alphabet is read exactly.
        let custom = chunked(None, 4, 5, Some(CUSTOM));
        let key = custom.generate(&mut rng);
        assert!(custom.looks_valid(&key));
        assert!(!custom.looks_valid(&key.to_uppercase()));
    }

    #[test]
    fn uuid_keys_pass_the_typo_check() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..1000 {
            let key = KeyFormat::Uuid.generate(&mut rng);
            assert!(key_looks_valid(&key) && key_looks_valid(&key.to_uppercase()));
            assert!(KeyFormat::Uuid.looks_valid(&key) && !KeyFormat::Uuid.looks_valid(&key.to_uppercase()));
        }
        assert!(!KeyFormat::Uuid.looks_valid("6fa459ea-ee8a-3ca4-894e-db77e160355e"), "version 3");
        assert!(!KeyFormat::Uuid.looks_valid("6fa459eaee8a4ca4894edb77e160355e"), "not hyphenated");
    }

    #[test]
    fn keys_that_do_not_look_chunked_pass_the_typo_check() {
        for key in ["", "x", "not-a-license", "ACME-{5}", "ACME-12345678", "PRO-2024-ABCDEFG", "a b c", "ÄÖÜ-ÄÖÜ-ÄÖÜ"]
        {
            assert!(key_looks_valid(key), "{key:?}");
        }
        // Two equal Crockford groups (`N0T` and `KEY`): taken for a chunked key, with a broken shape.
        assert!(!key_looks_valid("not-a-key"));
        // Taken for chunked keys whose check group is wrong.
        assert!(!key_looks_valid("ABCDE-FGHJK"));
        assert!(!key_looks_valid("ACME-ABCDE-FGHJK-MNPQR"));
    }

    #[test]
    fn the_design_example_pattern_is_flagged_as_unsafe_with_the_typo_check() {
        assert!(!pattern("ACME-{5}-{5}-{5}").works_with_typo_check());
        assert!(!pattern("{4}-X{3}").works_with_typo_check());
        assert!(!chunked(None, 4, 5, Some("0123456789abcdef")).works_with_typo_check());
        assert!(chunked(None, 4, 5, Some("!#$%&*+=?@^~<>;:")).works_with_typo_check());
        assert!(pattern("ACME-{5}-{6}-{7}").works_with_typo_check());
        assert!(pattern("{5}-{5}!").works_with_typo_check());
        assert!(pattern("{25}").works_with_typo_check());
        assert!(chunked(Some("ACME"), 4, 5, None).works_with_typo_check());
        assert!(chunked(None, 4, 5, Some(CROCKFORD)).works_with_typo_check());
        assert!(KeyFormat::Uuid.works_with_typo_check());
        assert!(!chunked(None, 0, 5, None).works_with_typo_check());
    }

    #[test]
    fn pattern_keys_of_other_symbols_are_refused() {
        let format = pattern("ACME-{4}.{2}");
        assert!(format.looks_valid("ACME-7K3Q.9Z"));
        for key in ["ACME-7K3Q.9", "ACME-7K3Q.9ZZ", "ACME-7k3Q.9Z", "ACME-7K3U.9Z", "acme-7K3Q.9Z", "ACME-7K3Q-9Z", ""]
        {
            assert!(!format.looks_valid(key), "{key:?}");
        }
    }

    /// Where the symbols of a key are, and which other characters could replace each of them.
    fn symbol_positions(key: &str) -> Vec<usize> {
        key.bytes().enumerate().filter(|(_, b)| *b != b'-').map(|(i, _)| i).collect()
    }

    fn replaced(key: &str, at: usize, with: &str) -> String {
        format!("{}{}{}", &key[..at], with, &key[at + 1..])
    }

    fn a_chunked_format() -> impl Strategy<Value = KeyFormat> {
        (
            proptest::option::of("[A-Za-z0-9]{1,6}"),
            1u32..=5,
            2u32..=6,
            prop_oneof![
                Just(None),
                Just(Some(CROCKFORD.to_owned())),
                Just(Some(CUSTOM.to_owned())),
                Just(Some("0123456789abcdef".to_owned()))
            ],
        )
            .prop_map(|(prefix, groups, group_length, alphabet)| KeyFormat::Chunked {
                prefix,
                groups,
                group_length,
                alphabet,
            })
    }

    /// A chunked key in the default alphabet with at least three random groups of three or more.
    fn a_default_key() -> impl Strategy<Value = String> {
        (proptest::option::of("[A-Za-z0-9]{1,6}"), 3u32..=5, 3u32..=6, any::<u64>()).prop_map(
            |(prefix, groups, group_length, seed)| {
                let format = KeyFormat::Chunked { prefix, groups, group_length, alphabet: None };
                format.generate(&mut StdRng::seed_from_u64(seed))
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn every_substitution_and_adjacent_transposition_is_caught(format in a_chunked_format(), seed: u64) {
            let key = format.generate(&mut StdRng::seed_from_u64(seed));
            prop_assert!(format.looks_valid(&key));
            let KeyFormat::Chunked { alphabet, .. } = &format else { unreachable!() };
            let symbols = alphabet.as_deref().unwrap_or(CROCKFORD);
            let crockford = symbols == CROCKFORD;
            if crockford {
                prop_assert!(key_looks_valid(&key));
            }
            let same = |a: &str, b: &str| if crockford { normalize_crockford(a) == normalize_crockford(b) } else { a == b };
            for at in symbol_positions(&key) {
                for symbol in symbols.chars() {
                    let typo = replaced(&key, at, &symbol.to_string());
                    if same(&typo, &key) {
                        continue;
                    }
                    prop_assert!(!format.looks_valid(&typo), "substitution at {} of {}", at, key);
                    if crockford {
                        prop_assert!(!key_looks_valid(&typo), "substitution at {} of {}", at, key);
                    }
                }
            }
            let bytes = key.as_bytes();
            for at in 0..bytes.len() - 1 {
                if bytes[at] == b'-' || bytes[at + 1] == b'-' || bytes[at] == bytes[at + 1] {
                    continue;
                }
                let mut swapped = bytes.to_vec();
                swapped.swap(at, at + 1);
                let typo = String::from_utf8(swapped).unwrap();
                if same(&typo, &key) {
                    continue;
                }
                prop_assert!(!format.looks_valid(&typo), "transposition at {} of {}", at, key);
                if crockford {
                    prop_assert!(!key_looks_valid(&typo), "transposition at {} of {}", at, key);
                }
            }
        }

        #[test]
        fn any_single_character_typo_of_a_default_key_is_caught(key in a_default_key()) {
            prop_assert!(key_looks_valid(&key));
            let replacements = ["0", "Z", "U", "-", " ", "_", "é", "a", "9"];
            let mut typos = Vec::new();
            for at in 0..key.len() {
                typos.push(format!("{}{}", &key[..at], &key[at + 1..]));
                for with in replacements {
                    typos.push(replaced(&key, at, with));
                    typos.push(format!("{}{}{}", &key[..at], with, &key[at..]));
                }
                if at + 1 < key.len() {
                    let mut swapped = key.as_bytes().to_vec();
                    swapped.swap(at, at + 1);
                    typos.push(String::from_utf8(swapped).unwrap());
                }
            }
            for with in replacements {
                typos.push(format!("{key}{with}"));
            }
            for typo in typos {
                if normalize_crockford(&typo) != normalize_crockford(&key) {
                    prop_assert!(!key_looks_valid(&typo), "{:?} from {:?}", typo, key);
                }
            }
        }

        #[test]
        fn formats_that_work_with_the_typo_check_make_keys_it_accepts(
            template in "[A-Z0-9-]{0,6}(\\{[1-9]\\}[A-Z0-9.-]{0,3}){1,5}",
            // Symbols that never read as Crockford's, so most of these alphabets are safe.
            custom in proptest::sample::subsequence((b'!'..=b'~').filter(|&b| b != b'-' && !reads_as_crockford(b)).collect::<Vec<u8>>(), 16..=30),
            seed: u64,
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let custom = String::from_utf8(custom).unwrap();
            for format in [pattern(&template), chunked(None, 3, 4, Some(&custom)), chunked(Some("K"), 3, 4, Some(&custom))] {
                if format.check().is_err() || !format.works_with_typo_check() {
                    continue;
                }
                for _ in 0..20 {
                    let key = format.generate(&mut rng);
                    prop_assert!(format.looks_valid(&key), "{:?}: {}", format, key);
                    prop_assert!(key_looks_valid(&key), "{:?}: {}", format, key);
                }
            }
        }

        #[test]
        fn pattern_keys_match_their_template(
            pieces in proptest::collection::vec(("[A-Za-z0-9._/-]{0,4}", 1usize..=12), 1..5),
            tail in "[A-Za-z0-9._/-]{0,4}",
            seed: u64,
        ) {
            let template: String = pieces.iter().map(|(literal, n)| format!("{literal}{{{n}}}")).collect::<String>() + &tail;
            let format = pattern(&template);
            let check = format.check().unwrap();
            let total: usize = pieces.iter().map(|(_, n)| n).sum();
            prop_assert_eq!(check.entropy_bits, total as f64 * 5.0);
            let key = format.generate(&mut StdRng::seed_from_u64(seed));
            prop_assert!(format.looks_valid(&key));
            // Walk the template by hand: literals verbatim, each `{n}` as n Crockford symbols.
            let mut rest = key.as_str();
            for (literal, n) in &pieces {
                prop_assert!(rest.starts_with(literal.as_str()));
                rest = &rest[literal.len()..];
                prop_assert!(rest.len() >= *n && is_crockford_text(&rest[..*n]));
                rest = &rest[*n..];
            }
            prop_assert_eq!(rest, tail.as_str());
        }

        #[test]
        fn the_key_checks_never_panic(key in "\\PC{0,80}", format in a_chunked_format()) {
            let _ = key_looks_valid(&key);
            let _ = format.looks_valid(&key);
            let _ = pattern("ACME-{5}-{5}").looks_valid(&key);
            let _ = KeyFormat::Uuid.looks_valid(&key);
        }
    }
}
