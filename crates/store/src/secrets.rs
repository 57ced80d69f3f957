//! Credential secrets at rest: the one place where a credential's secret key is turned into
//! what the `credentials.secret_key` column stores, and back.
//!
//! Both clouds' signatures are HMACs, so the server needs the secret itself to verify one: it
//! cannot be hashed. Every write of a credential goes through [`SecretSealer::seal`] and every
//! read through [`SecretSealer::open`], at the row boundary of the store (`put_credential` and
//! `rows::credential`), so nothing above the store sees a stored form and nothing below it
//! sees a secret.

/// Turns secrets into their stored form and back.
#[derive(Clone, Debug, Default)]
pub struct SecretSealer {}

impl SecretSealer {
    /// A sealer that stores secrets as they are.
    pub fn plaintext() -> SecretSealer {
        SecretSealer {}
    }

    /// The stored form of `secret`, the secret key of `access_key`.
    pub fn seal(&self, _access_key: &str, secret: &str) -> String {
        secret.to_owned()
    }

    /// The secret key of `access_key` from its stored form.
    pub fn open(&self, _access_key: &str, stored: &str) -> crate::StoreResult<String> {
        Ok(stored.to_owned())
    }
}
