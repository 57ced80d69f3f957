//! Request signatures of the two cloud APIs tmirror speaks, so that the clouds' official SDKs
//! can talk to the tmirror server unchanged and tmirror's own CLI can talk to it the same way.
//!
//! - [`huawei`]: Huawei Cloud `SDK-HMAC-SHA256` (the `Authorization` + `X-Sdk-Date` scheme) and
//!   its Chinese-national-standard twin `SDK-HMAC-SM3`.
//! - [`aliyun`]: Alibaba Cloud `ACS3-HMAC-SHA256` (the SDK default), `ACS3-HMAC-SM3`, and the
//!   legacy RPC `HMAC-SHA1` SignatureVersion 1.0.
//!
//! The SM3 variants are the SHA-256 schemes with every SHA-256 (payload hash, canonical-request
//! hash, HMAC) replaced by SM3 (GB/T 32905-2016); the `Authorization` header names the algorithm,
//! so a verifier learns from it which one to recompute.
//!
//! Everything here is a pure function over the parts of an HTTP request ([`Request`]): no I/O,
//! no clock reads (the caller passes "now"), no HTTP framework types. The server adapts its
//! framework's request to a [`Request`]; the client builds one from what it is about to send.
//!
//! Secrets are compared in constant time; every verification failure is a typed error that says
//! which check failed, so the server can map it to the cloud's own error code.
//!
//! # Example (Huawei)
//!
//! ```
//! use tmirror_sign::{huawei, Request};
//! use time::OffsetDateTime;
//!
//! // Client: set X-Sdk-Date and Host, sign, then send the Authorization header.
//! let date = huawei::format_sdk_date(OffsetDateTime::now_utc());
//! let mut headers = vec![
//!     ("Host", "127.0.0.1:8080".to_owned()),
//!     ("Content-Type", "application/json".to_owned()),
//!     ("X-Sdk-Date", date.clone()),
//! ];
//! let body = br#"{"traffic_mirror_filter": {"name": "f1"}}"#;
//! let req = Request { method: "POST", path: "/v3/pid/vpc/traffic-mirror-filters",
//!                     query: "", headers: &headers, body };
//! let auth = huawei::sign(&req, "AK", "SK", &date, &["content-type", "host", "x-sdk-date"])
//!     .unwrap();
//! headers.push(("Authorization", auth));
//!
//! // Server: parse, look the secret up by access key, verify.
//! let req = Request { method: "POST", path: "/v3/pid/vpc/traffic-mirror-filters",
//!                     query: "", headers: &headers, body };
//! let parsed = huawei::Authorization::from_headers(&headers).unwrap();
//! let secret = (parsed.access == "AK").then_some("SK"); // e.g. a store lookup
//! let verified = huawei::verify(&req, &parsed, secret, OffsetDateTime::now_utc(),
//!                               huawei::DEFAULT_MAX_SKEW).unwrap();
//! assert!(verified.payload_signed);
//! ```

#![forbid(unsafe_code)]

pub mod aliyun;
pub mod huawei;

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use sm3::Sm3;
use subtle::ConstantTimeEq;

/// Lower-case hex SHA-256 of an empty byte string; both clouds use it as the payload hash of a
/// request without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Read access to the headers of a request.
///
/// Names are matched ASCII-case-insensitively, as HTTP requires. Implemented for slices, arrays
/// and vectors of `(name, value)` pairs, which is what a server gets from one line of adapter
/// code (e.g. collecting an axum `HeaderMap` into `Vec<(&str, &str)>`).
pub trait Headers {
    /// Every value received under `name`, in arrival order; empty if the header is absent.
    fn header_values(&self, name: &str) -> Vec<&str>;

    /// The first value received under `name`.
    fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for [(K, V)] {
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.iter()
            .filter(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
            .collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Headers for [(K, V); N] {
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.as_slice().header_values(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for Vec<(K, V)> {
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.as_slice().header_values(name)
    }
}

/// The parts of an HTTP request that the signatures cover, exactly as sent or received.
pub struct Request<'a, H: Headers + ?Sized> {
    /// HTTP method, any case (it is upper-cased where a scheme needs it).
    pub method: &'a str,
    /// Raw request path as on the wire, still percent-encoded, without the query.
    pub path: &'a str,
    /// Raw query string as on the wire, without the leading `?`; empty if there is none.
    pub query: &'a str,
    /// The request headers.
    pub headers: &'a H,
    /// The exact body bytes (never a re-serialisation: the hash must match the wire bytes).
    pub body: &'a [u8],
}

// Manual impls: a derive would demand `H: Clone`, but we only hold a reference to `H`.
impl<H: Headers + ?Sized> Clone for Request<'_, H> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<H: Headers + ?Sized> Copy for Request<'_, H> {}

/// The unreserved set of RFC 3986, which both clouds keep verbatim; everything else is encoded
/// as `%XX` with upper-case hex (which is what `percent-encoding` emits).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encode every byte outside `A–Z a–z 0–9 - _ . ~` (the encoder both clouds share).
pub(crate) fn encode_unreserved(bytes: &[u8]) -> String {
    percent_encoding::percent_encode(bytes, UNRESERVED).to_string()
}

/// [`encode_unreserved`] appended to `out` (no string of its own).
pub(crate) fn push_unreserved(out: &mut String, bytes: &[u8]) {
    out.extend(percent_encoding::percent_encode(bytes, UNRESERVED));
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The hash function under a `*-HMAC-SHA256` or `*-HMAC-SM3` signature: both produce 32 bytes
/// (64 hex digits), so the header formats are the same and only the arithmetic differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashFn {
    Sha256,
    Sm3,
}

impl HashFn {
    /// Lower-case hex digest of `data`.
    pub(crate) fn hex(self, data: &[u8]) -> String {
        match self {
            HashFn::Sha256 => sha256_hex(data),
            HashFn::Sm3 => hex::encode(Sm3::digest(data)),
        }
    }

    /// Lower-case hex HMAC of `message` keyed with `key`.
    pub(crate) fn hmac_hex(self, key: &[u8], message: &[u8]) -> String {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
        const ANY_KEY: &str = "HMAC takes keys of any length";
        match self {
            HashFn::Sha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect(ANY_KEY);
                mac.update(message);
                hex::encode(mac.finalize().into_bytes())
            }
            HashFn::Sm3 => {
                let mut mac = Hmac::<Sm3>::new_from_slice(key).expect(ANY_KEY);
                mac.update(message);
                hex::encode(mac.finalize().into_bytes())
            }
        }
    }
}

/// Constant-time equality, so that a mismatch does not leak how many leading bytes of a
/// signature an attacker got right. The length is not secret (it is fixed by the algorithm).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Splits a raw query string into raw `(key, value)` items: on `&`, then at the first `=`.
/// Empty items (`a=1&&b=2`, a trailing `&`) carry no parameter and are skipped; an item without
/// `=` is a key with an empty value.
pub(crate) fn split_query(raw: &str) -> impl Iterator<Item = (&str, &str)> {
    raw.split('&')
        .filter(|item| !item.is_empty())
        .map(|item| item.split_once('=').unwrap_or((item, "")))
}

/// Whether `|now - at| <= max_skew`.
pub(crate) fn within_skew(
    at: time::OffsetDateTime,
    now: time::OffsetDateTime,
    max_skew: time::Duration,
) -> bool {
    (now - at).abs() <= max_skew
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sha256_constant_is_right() {
        assert_eq!(sha256_hex(b""), EMPTY_SHA256);
    }

    #[test]
    fn sm3_matches_the_standard() {
        // GB/T 32905-2016 appendix A, example 1 ("abc"), and the hash of nothing that both
        // clouds' SDKs use for an empty body.
        assert_eq!(
            HashFn::Sm3.hex(b"abc"),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            HashFn::Sm3.hex(b""),
            "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"
        );
        assert_eq!(HashFn::Sha256.hex(b""), EMPTY_SHA256);
        // HMAC-SM3 as Python computes it (what both SDKs do):
        // hmac.new(b"key", b"abc", lambda d=b"": hashlib.new("sm3", d)).hexdigest()
        assert_eq!(
            HashFn::Sm3.hmac_hex(b"key", b"abc"),
            "28e63256e7c5a087b1f073265dc53092163f7b82729735d06f28f10af9d52393"
        );
    }

    #[test]
    fn encoder_keeps_only_unreserved() {
        assert_eq!(encode_unreserved(b"aZ09-_.~"), "aZ09-_.~");
        assert_eq!(
            encode_unreserved(" */+=&é".as_bytes()),
            "%20%2A%2F%2B%3D%26%C3%A9"
        );
    }

    #[test]
    fn header_lookup_is_case_insensitive_and_multi_valued() {
        let h = [("Host", "a"), ("X-Foo", "1"), ("x-foo", "2")];
        assert_eq!(h.header("host"), Some("a"));
        assert_eq!(h.header_values("X-FOO"), vec!["1", "2"]);
        assert!(h.header_values("missing").is_empty());
    }

    #[test]
    fn split_query_items() {
        let items: Vec<_> = split_query("a=1&&b&c=x=y&").collect();
        assert_eq!(items, vec![("a", "1"), ("b", ""), ("c", "x=y")]);
    }
}
