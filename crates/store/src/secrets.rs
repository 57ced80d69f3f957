//! Credential secrets at rest: the one place where a credential's secret key is turned into
//! what the `credentials.secret_key` column stores, and back.
//!
//! Both clouds' signatures are HMACs, so the server needs the secret itself to verify one: it
//! cannot be hashed. It is encrypted instead, with XChaCha20-Poly1305 under a 256-bit master
//! key that never enters the database. Every write of a credential goes through
//! [`SecretSealer::seal`] and every read through [`SecretSealer::open`], at the row boundary of
//! the store (`put_credential` and `rows::credential`), so nothing above the store sees a
//! stored form and nothing below it sees a secret.
//!
//! The stored form describes itself: `enc:v1:<key id>:<base64url(nonce ‖ ciphertext)>`, with a
//! random 192-bit nonce per write. The key id names the master key (a hash of it, not the key),
//! so that a server given the wrong key says so instead of failing to verify signatures. The
//! access key is bound as associated data: a ciphertext copied to another credential's row
//! does not open.
//!
//! A sealer has one *primary* key, which every write uses, and may accept other keys for
//! reading (a key rotation: see `docs/security.md`). A store re-seals, when it opens, every
//! secret that is not under the primary key — plaintext rows of a database from before
//! encryption and rows under an accepted old key — after checking that it can open all of them.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::{StoreError, StoreResult};

/// The prefix of a sealed secret (version 1 of the format).
const PREFIX: &str = "enc:v1:";
/// Bytes of a master key.
pub const MASTER_KEY_LEN: usize = 32;
/// Bytes of an XChaCha20 nonce.
const NONCE_LEN: usize = 24;
/// What the associated data of a secret starts with (then its access key).
const AAD_CONTEXT: &[u8] = b"tmirror credential secret v1\0";

/// A 256-bit master key. Its `Debug` shows only its id.
#[derive(Clone)]
pub struct MasterKey {
    bytes: [u8; MASTER_KEY_LEN],
    id: String,
}

/// Why a text is not a master key.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("a master key is {MASTER_KEY_LEN} random bytes in base64 (44 characters); this is not base64")]
    NotBase64,
    #[error("a master key is {MASTER_KEY_LEN} random bytes in base64 (44 characters); this is {0} bytes")]
    Length(usize),
}

impl MasterKey {
    /// A new random key, from the operating system's generator.
    pub fn generate() -> MasterKey {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        MasterKey::from_bytes(key.into())
    }

    pub fn from_bytes(bytes: [u8; MASTER_KEY_LEN]) -> MasterKey {
        let mut h = Sha256::new();
        h.update(b"tmirror master key id\0");
        h.update(bytes);
        let id = hex16(&h.finalize()[..8]);
        MasterKey { bytes, id }
    }

    /// A key from its text form: standard base64 of its 32 bytes, surrounding white space
    /// ignored (as in a key file or `TMIRROR_MASTER_KEY`).
    pub fn from_base64(text: &str) -> Result<MasterKey, MasterKeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| MasterKeyError::NotBase64)?;
        let bytes: [u8; MASTER_KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| MasterKeyError::Length(bytes.len()))?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// The text form (what a key file holds, without the line end).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    /// The key's public name: 16 hex digits of a hash of it. Safe to log and to store.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.bytes).into())
    }
}

impl std::fmt::Debug for MasterKey {
    // The key never reaches a log line; its id does.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish()
    }
}

impl PartialEq for MasterKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

fn hex16(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a stored secret is, as far as a sealer can tell without opening it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sealed<'a> {
    /// Not sealed: a row written before secrets were encrypted.
    Plain,
    /// Sealed under the key with this id.
    Under(&'a str),
}

/// The key id of a stored secret (`Plain` if it is not sealed).
pub(crate) fn sealed_under(stored: &str) -> Sealed<'_> {
    match stored.strip_prefix(PREFIX).and_then(|r| r.split_once(':')) {
        Some((id, _)) => Sealed::Under(id),
        None => Sealed::Plain,
    }
}

/// Turns secrets into their stored form and back: seals with the primary key, opens with any
/// key it was given.
#[derive(Clone, Debug)]
pub struct SecretSealer {
    primary: MasterKey,
    /// Keys accepted for opening only.
    others: Vec<MasterKey>,
}

impl SecretSealer {
    /// A sealer that seals with `primary` and also opens what `others` sealed.
    pub fn new(primary: MasterKey, others: Vec<MasterKey>) -> SecretSealer {
        let others = others.into_iter().filter(|k| *k != primary).collect();
        SecretSealer { primary, others }
    }

    /// The key every write uses.
    pub fn primary(&self) -> &MasterKey {
        &self.primary
    }

    /// The stored form of `secret`, the secret key of `access_key`.
    pub fn seal(&self, access_key: &str, secret: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = aad(access_key);
        let sealed = self
            .primary
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: secret.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any message a credential holds");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        format!(
            "{PREFIX}{}:{}",
            self.primary.id,
            URL_SAFE_NO_PAD.encode(blob)
        )
    }

    /// The secret key of `access_key` from its stored form. A row from before encryption (no
    /// `enc:` prefix) is read as it is; the store re-seals such rows when it opens.
    pub fn open(&self, access_key: &str, stored: &str) -> StoreResult<String> {
        let id = match sealed_under(stored) {
            Sealed::Plain if !stored.starts_with("enc:") => return Ok(stored.to_owned()),
            Sealed::Plain => {
                return Err(StoreError::Corrupt(format!(
                    "the secret of credential {access_key} is in an unknown sealed format"
                )))
            }
            Sealed::Under(id) => id,
        };
        let key = self.key(id).ok_or_else(|| {
            StoreError::MasterKey(format!(
                "the secret of credential {access_key} is encrypted with master key {id}, which \
                 this server was not given (it has {})",
                self.key_ids()
            ))
        })?;
        let corrupt = || {
            StoreError::Corrupt(format!(
                "the secret of credential {access_key} does not decrypt under master key {id}: \
                 it was altered or copied from another credential's row"
            ))
        };
        let blob = &stored.as_bytes()[PREFIX.len() + id.len() + 1..];
        let blob = URL_SAFE_NO_PAD.decode(blob).map_err(|_| corrupt())?;
        if blob.len() < NONCE_LEN {
            return Err(corrupt());
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let aad = aad(access_key);
        let plain = key
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| corrupt())?;
        String::from_utf8(plain).map_err(|_| corrupt())
    }

    /// Whether `stored` is sealed under the primary key (and so needs no re-sealing).
    pub(crate) fn is_current(&self, stored: &str) -> bool {
        sealed_under(stored) == Sealed::Under(&self.primary.id)
    }

    fn key(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.primary)
            .chain(&self.others)
            .find(|k| k.id == id)
    }

    /// "key A" or "key A and accepts B, C", for messages.
    fn key_ids(&self) -> String {
        let mut s = format!("master key {}", self.primary.id);
        if !self.others.is_empty() {
            let others: Vec<&str> = self.others.iter().map(|k| k.id.as_str()).collect();
            s.push_str(&format!(" and accepts {}", others.join(", ")));
        }
        s
    }
}

/// Logs what re-sealing at open did.
pub(crate) fn resealed(count: u64, sealer: &SecretSealer) {
    if count > 0 {
        tracing::info!(
            count,
            master_key = sealer.primary().id(),
            "credential secrets re-encrypted under the master key"
        );
    }
}

fn aad(access_key: &str) -> Vec<u8> {
    let mut aad = AAD_CONTEXT.to_vec();
    aad.extend_from_slice(access_key.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_round_trips_and_is_not_in_its_sealed_form() {
        let s = SecretSealer::new(MasterKey::generate(), vec![]);
        let sealed = s.seal("AK1", "very-secret");
        assert!(sealed.starts_with(&format!("enc:v1:{}:", s.primary().id())));
        assert!(!sealed.contains("very-secret"));
        assert_eq!(s.open("AK1", &sealed).unwrap(), "very-secret");
        // A fresh nonce each time.
        assert_ne!(s.seal("AK1", "very-secret"), sealed);
        assert!(s.is_current(&sealed));
    }

    #[test]
    fn a_sealed_secret_does_not_open_for_another_access_key_or_when_altered() {
        let s = SecretSealer::new(MasterKey::generate(), vec![]);
        let sealed = s.seal("AK1", "very-secret");
        assert!(matches!(
            s.open("AK2", &sealed),
            Err(StoreError::Corrupt(_))
        ));
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(matches!(
            s.open("AK1", &altered),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn another_key_is_named_and_accepted_keys_open() {
        let old = MasterKey::generate();
        let new = MasterKey::generate();
        let sealed = SecretSealer::new(old.clone(), vec![]).seal("AK", "s");
        let e = SecretSealer::new(new.clone(), vec![])
            .open("AK", &sealed)
            .unwrap_err()
            .to_string();
        assert!(e.contains(old.id()) && e.contains(new.id()), "{e}");
        let rotating = SecretSealer::new(new, vec![old]);
        assert_eq!(rotating.open("AK", &sealed).unwrap(), "s");
        assert!(!rotating.is_current(&sealed));
    }

    #[test]
    fn keys_read_from_text_and_never_show_in_debug() {
        let k = MasterKey::generate();
        let again = MasterKey::from_base64(&format!("  {}\n", k.to_base64())).unwrap();
        assert_eq!(again.id(), k.id());
        assert!(!format!("{k:?}").contains(&k.to_base64()));
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(matches!(
            MasterKey::from_base64(&STANDARD.encode([0u8; 16])),
            Err(MasterKeyError::Length(16))
        ));
    }

    #[test]
    fn plaintext_rows_are_read_as_they_are() {
        let s = SecretSealer::new(MasterKey::generate(), vec![]);
        assert_eq!(
            s.open("AK", "old-plain-secret").unwrap(),
            "old-plain-secret"
        );
        assert!(!s.is_current("old-plain-secret"));
        assert!(s.open("AK", "enc:v2:x").is_err());
    }
}
