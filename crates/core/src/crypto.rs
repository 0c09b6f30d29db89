//! Secrets sealed at rest: AES-256-GCM under keys from the environment, each sealed value
//! carrying the id of the key that sealed it, so keys can be rotated (`ponte keys rotate`
//! re-seals under the active key) while older values stay readable.
//!
//! The associated data binds a sealed value to where it belongs (tenant, provider, field): a
//! value copied into another row does not open.
//!
//! `PONTE_SEALING_KEYS` lists `id=base64(32 bytes)` pairs separated by commas; the first is the
//! active key, the others only open older values. Generate a key with
//! `head -c 32 /dev/urandom | base64`.

use std::{collections::HashMap, fmt, sync::Arc};

use aes_gcm::{
    Aes256Gcm, Key, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;

use crate::config::{ConfigError, Env};

const FORMAT: &str = "v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed with key '{0}', which is not configured")]
    UnknownKey(String),
    #[error("sealed value does not open (wrong key or moved from another record)")]
    Tampered,
}

/// A new random key as a `PONTE_SEALING_KEYS` entry: `id=base64(32 bytes)`.
pub fn generate_key_entry(id: &str) -> String {
    let mut key = [0_u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!("{id}={}", STANDARD.encode(key))
}

/// Seals and opens secrets. Cheap to clone.
#[derive(Clone)]
pub struct Sealer {
    active: String,
    keys: Arc<HashMap<String, Aes256Gcm>>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer").field("active", &self.active).field("keys", &self.keys.len()).finish()
    }
}

impl Sealer {
    /// Reads `PONTE_SEALING_KEYS`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let raw = env.required("PONTE_SEALING_KEYS", "id=base64 pairs of 32-byte keys, active first")?;
        Self::parse(&raw).map_err(|problem| ConfigError::new("PONTE_SEALING_KEYS", problem))
    }

    /// Parses `id=base64,id=base64`; the error never contains key material.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut keys = HashMap::new();
        let mut active = None;
        for (i, pair) in raw.split(',').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
            let (id, b64) = pair.split_once('=').ok_or_else(|| format!("entry {} is not id=base64", i + 1))?;
            let id = id.trim();
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(format!("entry {}: key id must be letters, digits, '-' or '_'", i + 1));
            }
            let bytes = STANDARD.decode(b64.trim()).map_err(|_| format!("key '{id}' is not valid base64"))?;
            if bytes.len() != 32 {
                return Err(format!("key '{id}' is {} bytes; AES-256 needs 32", bytes.len()));
            }
            if keys.insert(id.to_owned(), Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes))).is_some() {
                return Err(format!("key id '{id}' appears twice"));
            }
            active.get_or_insert_with(|| id.to_owned());
        }
        let active = active.ok_or_else(|| "no key given".to_owned())?;
        Ok(Self { active, keys: Arc::new(keys) })
    }

    /// A sealer with one random key, for tests.
    pub fn ephemeral() -> Self {
        Self::parse(&generate_key_entry("ephemeral")).unwrap_or_else(|_| unreachable!("valid key"))
    }

    /// The id of the key new values are sealed with.
    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    /// Seals `plaintext` for the place `aad` names (e.g. "tenant/loja-1/bling/refresh_token").
    pub fn seal(&self, plaintext: &[u8], aad: &str) -> String {
        let cipher = &self.keys[&self.active];
        let mut nonce = [0_u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: aad.as_bytes() })
            .unwrap_or_else(|_| unreachable!("AES-GCM encryption of an in-memory buffer cannot fail"));
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        format!("{FORMAT}.{}.{}", self.active, STANDARD.encode(blob))
    }

    /// Opens a value sealed by [`Sealer::seal`] for the same `aad`.
    pub fn open(&self, sealed: &str, aad: &str) -> Result<Vec<u8>, SealError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(FORMAT), Some(key_id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SealError::Malformed);
        };
        let cipher = self.keys.get(key_id).ok_or_else(|| SealError::UnknownKey(key_id.to_owned()))?;
        let blob = STANDARD.decode(b64).map_err(|_| SealError::Malformed)?;
        if blob.len() < 12 + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(12);
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: aad.as_bytes() })
            .map_err(|_| SealError::Tampered)
    }

    /// Opens a UTF-8 secret.
    pub fn open_string(&self, sealed: &str, aad: &str) -> Result<String, SealError> {
        String::from_utf8(self.open(sealed, aad)?).map_err(|_| SealError::Tampered)
    }

    /// The key id a sealed value names, without opening it.
    pub fn key_id_of(sealed: &str) -> Option<&str> {
        let mut parts = sealed.splitn(3, '.');
        (parts.next() == Some(FORMAT)).then(|| parts.next()).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn values_round_trip_and_never_contain_the_plaintext() {
        let s = Sealer::parse(&format!("k1={}", key(1))).unwrap();
        let sealed = s.seal(b"refresh-token-123", "tenant/a/bling/refresh");
        assert!(!sealed.contains("refresh-token-123"));
        assert!(sealed.starts_with("v1.k1."));
        assert_eq!(s.open_string(&sealed, "tenant/a/bling/refresh").unwrap(), "refresh-token-123");
        assert_ne!(sealed, s.seal(b"refresh-token-123", "tenant/a/bling/refresh"), "nonces must differ");
    }

    #[test]
    fn a_value_moved_to_another_record_does_not_open() {
        let s = Sealer::parse(&format!("k1={}", key(1))).unwrap();
        let sealed = s.seal(b"secret", "tenant/a/bling/refresh");
        assert_eq!(s.open(&sealed, "tenant/b/bling/refresh"), Err(SealError::Tampered));
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 3;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert!(s.open(std::str::from_utf8(&flipped).unwrap(), "tenant/a/bling/refresh").is_err());
    }

    #[test]
    fn rotation_keeps_old_values_readable_and_seals_new_ones_under_the_active_key() {
        let old = Sealer::parse(&format!("k1={}", key(1))).unwrap();
        let sealed_old = old.seal(b"x", "aad");
        let rotated = Sealer::parse(&format!("k2={},k1={}", key(2), key(1))).unwrap();
        assert_eq!(rotated.open(&sealed_old, "aad").unwrap(), b"x");
        assert_eq!(Sealer::key_id_of(&rotated.seal(b"x", "aad")), Some("k2"));
        let retired = Sealer::parse(&format!("k2={}", key(2))).unwrap();
        assert_eq!(retired.open(&sealed_old, "aad"), Err(SealError::UnknownKey("k1".into())));
    }

    #[test]
    fn bad_key_lists_are_refused_without_echoing_key_material() {
        for (raw, expect) in [
            ("", "no key"),
            ("k1", "not id=base64"),
            ("k1=!!!", "not valid base64"),
            (&format!("k1={}", STANDARD.encode([1_u8; 16])), "16 bytes"),
            (&format!("k1={},k1={}", key(1), key(2)), "twice"),
            (&format!("k 1={}", key(1)), "key id"),
        ] {
            let err = Sealer::parse(raw).unwrap_err();
            assert!(err.contains(expect), "{raw}: {err}");
            assert!(!err.contains(&key(1)));
        }
        let err = Sealer::from_env(&Env::default()).unwrap_err();
        assert_eq!(err.var, "PONTE_SEALING_KEYS");
    }
}
