//! Who is signed in to the console, kept on the server: a random token in a cookie names a
//! sign-in; the server holds what it stands for (the access key, the sign-out token) and when
//! it ends. Nothing a browser holds can be forged into another key's view, and signing out or
//! expiry ends a sign-in for good (the token is worthless once forgotten here).
//!
//! Cookies are `HttpOnly` (no script reads them), `SameSite=Strict` (no other site's page
//! sends them), `Path=/console`, and `Secure` when the server speaks TLS. Forms that change
//! something carry a token a cross-site page cannot know: the sign-in form a pre-sign-in
//! token also set as a cookie (double submit), the sign-out form the sign-in's own token.
//!
//! Sign-ins live in this server's memory: behind a load balancer, a browser must keep to one
//! server (or sign in again), and a restart signs everyone out (`docs/operations.md`).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{header, HeaderMap, HeaderValue};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The sign-in cookie.
pub const COOKIE: &str = "tmirror_console";
/// The sign-in form's double-submit cookie.
pub const FORM_COOKIE: &str = "tmirror_console_form";
/// A sign-in unused this long ends.
pub const IDLE_SECS: i64 = 30 * 60;
/// A sign-in ends this long after it began, used or not.
pub const LIFETIME_SECS: i64 = 8 * 60 * 60;
/// At most this many sign-ins are kept; the oldest end first beyond it.
const MAX_SIGN_INS: usize = 10_000;

/// A fresh random token: 32 bytes, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Compares without leaking where two secrets first differ.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The value of cookie `name` in the request, if sent.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` for `name`; `max_age` 0 removes it.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie names and hex tokens are valid header text")
}

/// One sign-in.
#[derive(Clone)]
pub struct SignIn {
    pub access_key: String,
    /// What the sign-out form must carry.
    pub form_token: String,
    began: i64,
    used: i64,
}

/// Every current sign-in, by the SHA-256 of its cookie's token.
#[derive(Default)]
pub struct SignIns {
    by_hash: Mutex<HashMap<String, SignIn>>,
}

// Hand-written: the map's keys and form tokens are not for logs.
impl std::fmt::Debug for SignIns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIns")
            .field("count", &self.lock().len())
            .finish()
    }
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl SignIns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SignIn>> {
        self.by_hash.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Signs `access_key` in at `now`; the cookie's token.
    pub fn open(&self, access_key: &str, now: i64) -> String {
        let token = random_token();
        let mut all = self.lock();
        all.retain(|_, s| live(s, now));
        if all.len() >= MAX_SIGN_INS {
            if let Some(oldest) = all
                .iter()
                .min_by_key(|(_, s)| s.began)
                .map(|(k, _)| k.clone())
            {
                all.remove(&oldest);
            }
        }
        all.insert(
            hash(&token),
            SignIn {
                access_key: access_key.to_owned(),
                form_token: random_token(),
                began: now,
                used: now,
            },
        );
        token
    }

    /// The sign-in the token names, if it has not ended; marks it used at `now`.
    pub fn find(&self, token: &str, now: i64) -> Option<SignIn> {
        let mut all = self.lock();
        let key = hash(token);
        match all.get_mut(&key) {
            Some(s) if live(s, now) => {
                s.used = now;
                Some(s.clone())
            }
            Some(_) => {
                all.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the sign-in the token names.
    pub fn close(&self, token: &str) {
        self.lock().remove(&hash(token));
    }
}

fn live(s: &SignIn, now: i64) -> bool {
    now - s.used < IDLE_SECS && now - s.began < LIFETIME_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_ends_when_idle_too_long_after_its_lifetime_and_when_closed() {
        let s = SignIns::default();
        let t = s.open("AK", 1000);
        assert_eq!(s.find(&t, 1000 + IDLE_SECS - 1).unwrap().access_key, "AK");
        // Used just now: the idle clock starts again.
        assert!(s.find(&t, 1000 + 2 * IDLE_SECS - 2).is_some());
        assert!(s.find(&t, 1000 + 3 * IDLE_SECS).is_none(), "idle");
        assert!(s.find(&t, 1000).is_none(), "forgotten once ended");

        let t = s.open("AK", 0);
        let mut now = 0;
        while now + IDLE_SECS / 2 < LIFETIME_SECS {
            now += IDLE_SECS / 2;
            assert!(s.find(&t, now).is_some());
        }
        assert!(s.find(&t, LIFETIME_SECS).is_none(), "past its lifetime");

        let t = s.open("AK", 0);
        s.close(&t);
        assert!(s.find(&t, 1).is_none());
        assert!(s.find("not-a-token", 1).is_none());
    }

    #[test]
    fn cookies_are_read_by_name_and_set_safely() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; tmirror_console=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        let set = set_cookie(COOKIE, "abc", 60, true);
        let set = set.to_str().unwrap();
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/console",
            "Secure",
            "Max-Age=60",
        ] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set_cookie(COOKIE, "", 0, false)
            .to_str()
            .unwrap()
            .contains("Secure"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
