//! Secrets at rest (signing keys' private halves) sealed with the 32-byte master key:
//! XChaCha20-Poly1305 with a random nonce, written `v1.<base64url nonce>.<base64url ciphertext>`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

/// The format this module writes; the version is also bound into the ciphertext.
const VERSION: &str = "v1";
const ASSOCIATED_DATA: &[u8] = b"keyward-seal-v1";
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;

/// A sealed value longer than this is refused before it is decoded.
pub const MAX_SEALED_LEN: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the sealed value is malformed: {0}")]
    Malformed(&'static str),
    #[error("the sealed value has format `{0}`, which this version cannot open")]
    UnsupportedVersion(String),
    #[error("the sealed value does not open with this master key (another key, or it was altered)")]
    WrongKeyOrTampered,
}

/// Seals `plaintext` with the master key. Each call draws a fresh nonce, so sealing the same
/// secret twice gives two different strings.
pub fn seal(master: &[u8; 32], plaintext: &[u8]) -> String {
    let cipher = XChaCha20Poly1305::new(Key::from_slice(master));
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ciphertext = cipher
        .encrypt(&nonce, Payload { msg: plaintext, aad: ASSOCIATED_DATA })
        .expect("XChaCha20-Poly1305 only refuses messages of 256 GiB or more");
    format!("{VERSION}.{}.{}", URL_SAFE_NO_PAD.encode(nonce), URL_SAFE_NO_PAD.encode(ciphertext))
}

/// Opens what [`seal`] wrote. A wrong master key, an altered or a malformed value is an error.
pub fn unseal(master: &[u8; 32], sealed: &str) -> Result<Vec<u8>, SealError> {
    if sealed.len() > MAX_SEALED_LEN {
        return Err(SealError::Malformed("too long"));
    }
    let mut parts = sealed.split('.');
    let (Some(version), Some(nonce), Some(ciphertext), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SealError::Malformed("expected `v1.<nonce>.<ciphertext>`"));
    };
    if version != VERSION {
        let shown: String = version.chars().take(8).collect();
        return Err(SealError::UnsupportedVersion(shown.escape_debug().to_string()));
    }
    let nonce = URL_SAFE_NO_PAD.decode(nonce).map_err(|_| SealError::Malformed("the nonce is not base64url"))?;
    if nonce.len() != NONCE_BYTES {
        return Err(SealError::Malformed("the nonce is not 24 bytes"));
    }
    let ciphertext =
        URL_SAFE_NO_PAD.decode(ciphertext).map_err(|_| SealError::Malformed("the ciphertext is not base64url"))?;
    if ciphertext.len() < TAG_BYTES {
        return Err(SealError::Malformed("the ciphertext is shorter than its tag"));
    }
    XChaCha20Poly1305::new(Key::from_slice(master))
        .decrypt(XNonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: ASSOCIATED_DATA })
        .map_err(|_| SealError::WrongKeyOrTampered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MASTER: [u8; 32] = [3; 32];

    #[test]
    fn a_sealed_secret_opens_with_its_master_key_only() {
        let secret = [42u8; 32];
        let sealed = seal(&MASTER, &secret);
        assert!(sealed.starts_with("v1."));
        assert_eq!(unseal(&MASTER, &sealed).unwrap(), secret);
        assert_eq!(unseal(&[4; 32], &sealed), Err(SealError::WrongKeyOrTampered));
        assert_ne!(seal(&MASTER, &secret), sealed, "a fresh nonce each time");
        assert!(!sealed.contains(&URL_SAFE_NO_PAD.encode(secret)));
        assert_eq!(unseal(&MASTER, &seal(&MASTER, b"")).unwrap(), b"");
    }

    #[test]
    fn malformed_values_are_refused_with_a_reason() {
        let sealed = seal(&MASTER, b"secret");
        let (_, rest) = sealed.split_once('.').unwrap();
        let (nonce, ciphertext) = rest.split_once('.').unwrap();
        let cases = [
            (String::new(), SealError::Malformed("expected `v1.<nonce>.<ciphertext>`")),
            (format!("{sealed}.x"), SealError::Malformed("expected `v1.<nonce>.<ciphertext>`")),
            (format!("v2.{rest}"), SealError::UnsupportedVersion("v2".into())),
            (format!("v1.{nonce}=.{ciphertext}"), SealError::Malformed("the nonce is not base64url")),
            (format!("v1.{}.{ciphertext}", &nonce[..28]), SealError::Malformed("the nonce is not 24 bytes")),
            (format!("v1.{nonce}.{ciphertext}!"), SealError::Malformed("the ciphertext is not base64url")),
            (
                format!("v1.{nonce}.{}", &ciphertext[..20]),
                SealError::Malformed("the ciphertext is shorter than its tag"),
            ),
            ("x".repeat(MAX_SEALED_LEN + 1), SealError::Malformed("too long")),
        ];
        for (value, error) in cases {
            assert_eq!(unseal(&MASTER, &value), Err(error), "{value:.40}");
        }
    }

    #[test]
    fn the_version_is_bound_into_the_ciphertext() {
        // A value re-labelled under another format would not open even if a later version kept
        // the same layout: the version is associated data.
        let sealed = seal(&MASTER, b"secret");
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&MASTER));
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let without_version = cipher.encrypt(&nonce, b"secret".as_ref()).unwrap();
        let forged = format!("v1.{}.{}", URL_SAFE_NO_PAD.encode(nonce), URL_SAFE_NO_PAD.encode(without_version));
        assert_eq!(unseal(&MASTER, &forged), Err(SealError::WrongKeyOrTampered));
        assert!(unseal(&MASTER, &sealed).is_ok());
    }

    proptest! {
        #[test]
        fn seal_then_unseal(master: [u8; 32], secret in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(unseal(&master, &seal(&master, &secret)), Ok(secret));
        }

        #[test]
        fn any_changed_character_is_refused(at: prop::sample::Index, replacement in "[A-Za-z0-9_\\-.=]") {
            let mut sealed = seal(&MASTER, &[42; 32]);
            let i = at.index(sealed.len());
            if sealed[i..].starts_with(replacement.as_str()) {
                return Ok(());
            }
            sealed.replace_range(i..i + 1, &replacement);
            prop_assert!(unseal(&MASTER, &sealed).is_err());
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}", master: [u8; 32]) {
            let _ = unseal(&master, &text);
            let _ = unseal(&master, &format!("v1.{text}"));
        }
    }
}
