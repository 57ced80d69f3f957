//! Alibaba Cloud request signatures, as described in `aliyun-api.md` §1.4 and §2.
//!
//! - **ACS3-HMAC-SHA256** (what the SDKs send by default): `Authorization: ACS3-HMAC-SHA256
//!   Credential=<AK>,SignedHeaders=<h1;h2>,Signature=<hex>` over a canonical request built from
//!   the URL query only; form-body parameters are covered by the payload hash
//!   (`x-acs-content-sha256`). Server: [`Acs3Authorization::from_headers`], look the secret up,
//!   [`verify_acs3`]. Client: [`sign_acs3`].
//! - **ACS3-HMAC-SM3** (`Config.signature_algorithm = 'ACS3-HMAC-SM3'` in the Python SDK): the
//!   same with SM3 for every hash and the HMAC. The payload hash still travels in
//!   `x-acs-content-sha256`, but it is the SM3 hash of the body ([`Acs3Algorithm`]).
//!   Client: [`sign_acs3_with`].
//! - **HMAC-SHA1, SignatureVersion 1.0** (legacy RPC, `signature_algorithm='v2'` in the Python
//!   SDK): every parameter, query and form body, goes into the string to sign, and the signature
//!   travels as the `Signature` parameter. Server: [`rpc_parameters`], [`rpc_access_key_id`],
//!   look the secret up, [`verify_hmac_sha1`]. Client: [`sign_hmac_sha1`].
//!
//! Timestamp and nonce checks need server state (a clock, a nonce cache) and stay in the server;
//! [`parse_timestamp`] and [`check_skew`] are the pure parts of them.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::{ct_eq, encode_unreserved, sha256_hex, split_query, HashFn, Headers, Request};

/// Algorithm name of the V3 signature with HMAC-SHA256 (the SDKs' default).
pub const ACS3_ALGORITHM: &str = "ACS3-HMAC-SHA256";
/// Algorithm name of the V3 signature with HMAC-SM3.
pub const ACS3_SM3_ALGORITHM: &str = "ACS3-HMAC-SM3";
/// `SignatureMethod` of the legacy RPC signature.
pub const HMAC_SHA1_METHOD: &str = "HMAC-SHA1";
/// `SignatureVersion` of the legacy RPC signature.
pub const HMAC_SHA1_VERSION: &str = "1.0";
/// Header the client sets to the hex hash of the body (signed): SHA-256, or SM3 under
/// ACS3-HMAC-SM3 (the name stays).
pub const CONTENT_SHA256_HEADER: &str = "x-acs-content-sha256";
/// Header carrying the ACS3 signing time, `YYYY-MM-DDTHH:MM:SSZ`.
pub const DATE_HEADER: &str = "x-acs-date";
/// Header carrying the ACS3 replay nonce.
pub const NONCE_HEADER: &str = "x-acs-signature-nonce";
/// Clock skew Alibaba Cloud allows for `x-acs-date` / `Timestamp`.
pub const DEFAULT_MAX_SKEW: Duration = Duration::minutes(15);

const TIMESTAMP_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// The V3 signing algorithms accepted, named by the first word of `Authorization`.
/// (`ACS3-RSA-SHA256`, which the SDK also knows, needs a key pair and is not accepted.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Acs3Algorithm {
    /// `ACS3-HMAC-SHA256`, the SDKs' default.
    #[default]
    HmacSha256,
    /// `ACS3-HMAC-SM3`: SM3 for the payload hash, the canonical-request hash and the HMAC.
    HmacSm3,
}

impl Acs3Algorithm {
    /// Every accepted algorithm.
    pub const ALL: [Acs3Algorithm; 2] = [Acs3Algorithm::HmacSha256, Acs3Algorithm::HmacSm3];

    /// The name in `Authorization` and in the first line of the string to sign.
    pub fn name(self) -> &'static str {
        match self {
            Acs3Algorithm::HmacSha256 => ACS3_ALGORITHM,
            Acs3Algorithm::HmacSm3 => ACS3_SM3_ALGORITHM,
        }
    }

    /// The algorithm of that name (exact, case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Lower-case hex hash of the body: the hashed payload of the canonical request and the
    /// value the client must send in `x-acs-content-sha256`.
    pub fn payload_hash(self, body: &[u8]) -> String {
        self.hash_fn().hex(body)
    }

    fn hash_fn(self) -> HashFn {
        match self {
            Acs3Algorithm::HmacSha256 => HashFn::Sha256,
            Acs3Algorithm::HmacSm3 => HashFn::Sm3,
        }
    }
}

impl std::fmt::Display for Acs3Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why signing or verification failed; each variant names one check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A required header is absent: `Authorization` or one listed in `SignedHeaders`.
    #[error("missing header {0}")]
    MissingHeader(String),
    /// A required RPC parameter (`AccessKeyId`, `Signature`, `SignatureMethod`,
    /// `SignatureVersion`) is absent.
    #[error("missing parameter {0}")]
    MissingParameter(String),
    /// `Authorization` could not be parsed.
    #[error("malformed Authorization header: {0}")]
    MalformedAuthorization(&'static str),
    /// Another algorithm than ACS3-HMAC-SHA256 / ACS3-HMAC-SM3 (header) or HMAC-SHA1 1.0
    /// (parameters).
    #[error("unsupported signing algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The secret lookup for the access key found nothing.
    #[error("unknown access key")]
    UnknownAccessKey,
    /// `x-acs-content-sha256` is not the hash (SHA-256, or SM3) of the body received.
    #[error("x-acs-content-sha256 does not match the body")]
    ContentHashMismatch,
    /// A timestamp is not `YYYY-MM-DDTHH:MM:SSZ`.
    #[error("malformed timestamp {0:?}, expected YYYY-MM-DDTHH:MM:SSZ")]
    BadTimestamp(String),
    /// A timestamp is further from the server clock than the allowed skew.
    #[error("timestamp {timestamp} differs from server time by more than {max_skew}")]
    SkewedTimestamp {
        /// The received value.
        timestamp: String,
        /// The allowed skew.
        max_skew: Duration,
    },
    /// The signature does not match the request.
    #[error("signature mismatch")]
    SignatureMismatch,
}

// ---------------------------------------------------------------------------------------------
// Encoding shared by both schemes
// ---------------------------------------------------------------------------------------------

/// The `pct` encoder of §2: keep `A–Z a–z 0–9 - _ . ~`, encode every other UTF-8 byte as `%XX`
/// (upper-case hex). Unlike form encoding, space is `%20`, and `*` and `/` are encoded.
pub fn pct(s: &str) -> String {
    encode_unreserved(s.as_bytes())
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space, then `%XX`.
/// The `+` is replaced first so that an encoded `%2B` survives as a plus. Invalid UTF-8 becomes
/// U+FFFD rather than an error; such a value cannot match a signature made over valid text.
pub fn form_decode_component(raw: &str) -> String {
    // Most components (every key, most values) have nothing to decode: one copy, no scan of
    // the decoder's (it is a tenth of an Alibaba request's work otherwise).
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return raw.to_owned();
    }
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Decodes an `application/x-www-form-urlencoded` string (a URL query or a form body) into
/// `(key, value)` pairs in order, repeated keys kept. Empty items are skipped; an item without
/// `=` has an empty value.
pub fn form_decode(raw: &str) -> Vec<(String, String)> {
    split_query(raw)
        .map(|(k, v)| (form_decode_component(k), form_decode_component(v)))
        .collect()
}

/// The decoded value of the first parameter `name` of a form-encoded string, decoding only
/// that one (a key with nothing to decode is compared as it is).
pub fn form_value(raw: &str, name: &str) -> Option<String> {
    split_query(raw)
        .find(|(k, _)| *k == name || (k.contains(['%', '+']) && form_decode_component(k) == name))
        .map(|(_, v)| form_decode_component(v))
}

/// Lower-case hex SHA-256 of the body: the ACS3-HMAC-SHA256 hashed payload and the value the
/// client must send in `x-acs-content-sha256` (see [`Acs3Algorithm::payload_hash`] for SM3).
pub fn content_sha256(body: &[u8]) -> String {
    sha256_hex(body)
}

/// Parses an `x-acs-date` or `Timestamp` value (`YYYY-MM-DDTHH:MM:SSZ`, UTC).
pub fn parse_timestamp(value: &str) -> Result<OffsetDateTime, Error> {
    PrimitiveDateTime::parse(value, TIMESTAMP_FORMAT)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| Error::BadTimestamp(value.to_owned()))
}

/// Formats a time as an `x-acs-date` / `Timestamp` value (converted to UTC, whole seconds).
pub fn format_timestamp(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(TIMESTAMP_FORMAT)
        .expect("four-digit years format")
}

/// Parses `value` and checks it is within `max_skew` of `now` (normally [`DEFAULT_MAX_SKEW`]);
/// returns the parsed time so the server can key its nonce cache on it.
pub fn check_skew(
    value: &str,
    now: OffsetDateTime,
    max_skew: Duration,
) -> Result<OffsetDateTime, Error> {
    let at = parse_timestamp(value)?;
    if crate::within_skew(at, now, max_skew) {
        Ok(at)
    } else {
        Err(Error::SkewedTimestamp {
            timestamp: value.to_owned(),
            max_skew,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// ACS3-HMAC-SHA256
// ---------------------------------------------------------------------------------------------

/// Parsed `Authorization: ACS3-HMAC-SHA256 Credential=...,SignedHeaders=...,Signature=...`
/// (or `ACS3-HMAC-SM3 ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acs3Authorization<'a> {
    /// The algorithm the client signed with.
    pub algorithm: Acs3Algorithm,
    /// The AccessKey id the client claims.
    pub credential: &'a str,
    /// Signed header names in the order received (lower case and sorted by the SDK).
    pub signed_headers: Vec<&'a str>,
    /// Hex signature, as received.
    pub signature: &'a str,
}

impl<'a> Acs3Authorization<'a> {
    /// Parses an `Authorization` value. The Python SDK puts no spaces after the commas; spaces
    /// there and around `=` are tolerated.
    pub fn parse(value: &'a str) -> Result<Self, Error> {
        let value = value.trim();
        let (algorithm, rest) = value.split_once(|c: char| c.is_ascii_whitespace()).ok_or(
            Error::MalformedAuthorization("no credentials after the algorithm"),
        )?;
        let algorithm = Acs3Algorithm::from_name(algorithm)
            .ok_or_else(|| Error::UnsupportedAlgorithm(algorithm.to_owned()))?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for field in rest.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let (key, val) = field
                .split_once('=')
                .ok_or(Error::MalformedAuthorization("field without '='"))?;
            let slot = match key.trim() {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed,
                "Signature" => &mut signature,
                // Not covered by anything we check; ignoring keeps newer clients working.
                _ => continue,
            };
            if slot.replace(val.trim()).is_some() {
                return Err(Error::MalformedAuthorization("repeated field"));
            }
        }
        let credential = credential
            .filter(|c| !c.is_empty())
            .ok_or(Error::MalformedAuthorization("missing Credential"))?;
        let signed = signed
            .filter(|s| !s.is_empty())
            .ok_or(Error::MalformedAuthorization("missing SignedHeaders"))?;
        let signature = signature.ok_or(Error::MalformedAuthorization("missing Signature"))?;
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::MalformedAuthorization(
                "Signature is not 64 hex digits",
            ));
        }
        let signed_headers: Vec<&str> = signed.split(';').map(str::trim).collect();
        if signed_headers.iter().any(|h| h.is_empty()) {
            return Err(Error::MalformedAuthorization("empty name in SignedHeaders"));
        }
        Ok(Acs3Authorization {
            algorithm,
            credential,
            signed_headers,
            signature,
        })
    }

    /// Reads and parses the request's `Authorization` header.
    pub fn from_headers<H: Headers + ?Sized>(headers: &'a H) -> Result<Self, Error> {
        let value = headers
            .header("Authorization")
            .ok_or_else(|| Error::MissingHeader("Authorization".to_owned()))?;
        Self::parse(value)
    }
}

impl std::fmt::Display for Acs3Authorization<'_> {
    /// Formats the header value the way the Python SDK does (no spaces after commas).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} Credential={},SignedHeaders={},Signature={}",
            self.algorithm.name(),
            self.credential,
            self.signed_headers.join(";"),
            self.signature
        )
    }
}

/// ACS3 canonical query string (§2.1 step 4): the URL query only, form-decoded, re-encoded with
/// [`pct`], sorted by encoded key (byte order, so `Tag.10.Key` < `Tag.2.Key`), joined with `&`.
pub fn acs3_canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = form_decode(raw_query)
        .iter()
        .map(|(k, v)| (pct(k), pct(v)))
        .collect();
    // Sorting by value too only matters for repeated keys, which the SDKs never send; it keeps
    // the result deterministic if some client does.
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `name:value\n` per signed header; each value trimmed, several values sorted and joined
/// with `,` (§2.1 step 5).
fn acs3_canonical_headers<H: Headers + ?Sized>(
    headers: &H,
    signed_headers: &[&str],
) -> Result<String, Error> {
    let mut out = String::new();
    for name in signed_headers {
        let mut values: Vec<&str> = headers
            .header_values(name)
            .into_iter()
            .map(str::trim)
            .collect();
        if values.is_empty() {
            return Err(Error::MissingHeader((*name).to_owned()));
        }
        values.sort_unstable();
        out.push_str(&name.to_ascii_lowercase());
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    Ok(out)
}

/// ACS3 canonical request (§2.1 step 6) over the given signed header names, in the given order.
/// The canonical URI is the raw path (`/` for every RPC operation; empty counts as `/`); the
/// hashed payload is the algorithm's hash of the body.
pub fn acs3_canonical_request<H: Headers + ?Sized>(
    algorithm: Acs3Algorithm,
    req: &Request<'_, H>,
    signed_headers: &[&str],
) -> Result<String, Error> {
    let uri = if req.path.is_empty() { "/" } else { req.path };
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        uri,
        acs3_canonical_query(req.query),
        acs3_canonical_headers(req.headers, signed_headers)?,
        signed_headers.join(";"),
        algorithm.payload_hash(req.body),
    ))
}

/// ACS3 string to sign (§2.1 step 7): the algorithm's name and the hex hash of the canonical
/// request.
pub fn acs3_string_to_sign(algorithm: Acs3Algorithm, canonical_request: &str) -> String {
    format!(
        "{}\n{}",
        algorithm.name(),
        algorithm.hash_fn().hex(canonical_request.as_bytes())
    )
}

/// Hex HMAC (SHA-256 or SM3) of the string to sign, keyed with the AccessKey secret
/// (§2.1 step 8).
pub fn acs3_signature(algorithm: Acs3Algorithm, secret: &str, string_to_sign: &str) -> String {
    algorithm
        .hash_fn()
        .hmac_hex(secret.as_bytes(), string_to_sign.as_bytes())
}

/// Client side: the ACS3-HMAC-SHA256 `Authorization` value for `req`.
///
/// `req.headers` must already hold every header in `signed_headers`, including
/// `x-acs-content-sha256: <content_sha256(body)>`, `x-acs-date`, `x-acs-signature-nonce`,
/// `x-acs-action`, `x-acs-version` and `host` (the service requires `host`, all `x-acs-*` and
/// `content-type` to be signed). Names are lower-cased and sorted here.
pub fn sign_acs3<H: Headers + ?Sized>(
    req: &Request<'_, H>,
    access_key_id: &str,
    secret: &str,
    signed_headers: &[&str],
) -> Result<String, Error> {
    sign_acs3_with(
        Acs3Algorithm::HmacSha256,
        req,
        access_key_id,
        secret,
        signed_headers,
    )
}

/// [`sign_acs3`] with another algorithm. Under [`Acs3Algorithm::HmacSm3`] the
/// `x-acs-content-sha256` header must hold [`Acs3Algorithm::payload_hash`] of the body.
pub fn sign_acs3_with<H: Headers + ?Sized>(
    algorithm: Acs3Algorithm,
    req: &Request<'_, H>,
    access_key_id: &str,
    secret: &str,
    signed_headers: &[&str],
) -> Result<String, Error> {
    let mut names: Vec<String> = signed_headers
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let canonical = acs3_canonical_request(algorithm, req, &names)?;
    let signature = acs3_signature(
        algorithm,
        secret,
        &acs3_string_to_sign(algorithm, &canonical),
    );
    Ok(Acs3Authorization {
        algorithm,
        credential: access_key_id,
        signed_headers: names,
        signature: &signature,
    }
    .to_string())
}

/// Server side: verifies an ACS3 request against its parsed `auth`, with the algorithm `auth`
/// names.
///
/// `secret` is the result of looking up `auth.credential` (`None` → [`Error::UnknownAccessKey`]).
/// Checks `x-acs-content-sha256` (if sent) against the body's hash under that algorithm, then
/// the signature. Does **not**
/// check `x-acs-date` or the nonce: use [`check_skew`] and the server's nonce cache.
pub fn verify_acs3<H: Headers + ?Sized>(
    req: &Request<'_, H>,
    auth: &Acs3Authorization<'_>,
    secret: Option<&str>,
) -> Result<(), Error> {
    let secret = secret.ok_or(Error::UnknownAccessKey)?;
    let algorithm = auth.algorithm;
    // The canonical request uses the hash of the body we received, so a mismatching header
    // would fail the signature anyway; checking it first gives a precise error.
    if let Some(claimed) = req.headers.header(CONTENT_SHA256_HEADER) {
        if !claimed
            .trim()
            .eq_ignore_ascii_case(&algorithm.payload_hash(req.body))
        {
            return Err(Error::ContentHashMismatch);
        }
    }
    let canonical = acs3_canonical_request(algorithm, req, &auth.signed_headers)?;
    let expected = acs3_signature(
        algorithm,
        secret,
        &acs3_string_to_sign(algorithm, &canonical),
    );
    let received = auth.signature.to_ascii_lowercase();
    if ct_eq(expected.as_bytes(), received.as_bytes()) {
        Ok(())
    } else {
        Err(Error::SignatureMismatch)
    }
}

// ---------------------------------------------------------------------------------------------
// HMAC-SHA1, SignatureVersion 1.0
// ---------------------------------------------------------------------------------------------

/// The parameters of an RPC request: the URL query, then the body if it is a form
/// (`content-type: application/x-www-form-urlencoded`), decoded, repeated keys kept.
///
/// The server must route on and read parameters from exactly this list, because it is what the
/// HMAC-SHA1 signature covers; a body of any other content type is not covered.
pub fn rpc_parameters<H: Headers + ?Sized>(req: &Request<'_, H>) -> Vec<(String, String)> {
    let mut params = form_decode(req.query);
    let is_form = req.headers.header("content-type").is_some_and(|ct| {
        ct.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if is_form && !req.body.is_empty() {
        params.extend(form_decode(&String::from_utf8_lossy(req.body)));
    }
    params
}

fn param<'p, K: AsRef<str>, V: AsRef<str>>(params: &'p [(K, V)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(k, _)| k.as_ref() == name)
        .map(|(_, v)| v.as_ref())
}

/// The `AccessKeyId` parameter, to look the secret up with.
pub fn rpc_access_key_id<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> Result<&str, Error> {
    param(params, "AccessKeyId")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::MissingParameter("AccessKeyId".to_owned()))
}

/// HMAC-SHA1 string to sign (§2.2 steps 1–3): all decoded parameters except `Signature`, sorted
/// by key, `pct(key)=pct(value)` joined with `&`, then `METHOD&%2F&pct(that)`.
pub fn hmac_sha1_string_to_sign<K: AsRef<str>, V: AsRef<str>>(
    method: &str,
    params: &[(K, V)],
) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .filter(|(k, _)| *k != "Signature")
        .collect();
    // The SDK sorts the decoded keys; values only break ties between repeated keys.
    pairs.sort_unstable();
    // Built in two buffers, not a string per pair: this runs on every HMAC-SHA1 request.
    let mut canonical = String::with_capacity(
        pairs
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>()
            * 3
            / 2,
    );
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            canonical.push('&');
        }
        crate::push_unreserved(&mut canonical, k.as_bytes());
        canonical.push('=');
        crate::push_unreserved(&mut canonical, v.as_bytes());
    }
    let mut to_sign = String::with_capacity(method.len() + 5 + canonical.len() * 3 / 2);
    to_sign.push_str(&method.to_ascii_uppercase());
    to_sign.push_str("&%2F&");
    crate::push_unreserved(&mut to_sign, canonical.as_bytes());
    to_sign
}

/// Base64 HMAC-SHA1 of the string to sign with key `secret + "&"` (§2.2 step 4).
pub fn hmac_sha1_signature(secret: &str, string_to_sign: &str) -> String {
    let key = format!("{secret}&");
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Client side: the value of the `Signature` parameter for `params` (which should hold all
/// common parameters, `SignatureMethod=HMAC-SHA1` and `SignatureVersion=1.0` included; any
/// `Signature` already present is ignored). Send it form-encoded next to the others.
pub fn sign_hmac_sha1<K: AsRef<str>, V: AsRef<str>>(
    method: &str,
    params: &[(K, V)],
    secret: &str,
) -> String {
    hmac_sha1_signature(secret, &hmac_sha1_string_to_sign(method, params))
}

/// Server side: verifies an HMAC-SHA1 request given its parameters (from [`rpc_parameters`])
/// and the result of looking up its [`rpc_access_key_id`] (`None` → [`Error::UnknownAccessKey`]).
///
/// Requires `SignatureMethod=HMAC-SHA1` and `SignatureVersion=1.0`. Does **not** check
/// `Timestamp` or `SignatureNonce`: use [`check_skew`] and the server's nonce cache.
pub fn verify_hmac_sha1<K: AsRef<str>, V: AsRef<str>>(
    method: &str,
    params: &[(K, V)],
    secret: Option<&str>,
) -> Result<(), Error> {
    let missing = |name: &str| Error::MissingParameter(name.to_owned());
    let sig_method = param(params, "SignatureMethod").ok_or_else(|| missing("SignatureMethod"))?;
    if sig_method != HMAC_SHA1_METHOD {
        return Err(Error::UnsupportedAlgorithm(sig_method.to_owned()));
    }
    let version = param(params, "SignatureVersion").ok_or_else(|| missing("SignatureVersion"))?;
    if version != HMAC_SHA1_VERSION {
        return Err(Error::UnsupportedAlgorithm(format!(
            "{sig_method} version {version}"
        )));
    }
    let received = param(params, "Signature").ok_or_else(|| missing("Signature"))?;
    let secret = secret.ok_or(Error::UnknownAccessKey)?;
    let expected = sign_hmac_sha1(method, params, secret);
    if ct_eq(expected.as_bytes(), received.as_bytes()) {
        Ok(())
    } else {
        Err(Error::SignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: Acs3Algorithm = Acs3Algorithm::HmacSha256;
    const SM3: Acs3Algorithm = Acs3Algorithm::HmacSm3;

    const AK: &str = "testAKID";
    const SECRET: &str = "testSecret";
    const UA: &str = "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2";

    /// The business parameters of ACS3 #1 (and HMAC-SHA1 #2), as the SDK puts them in the URL.
    const ACS3_1_QUERY: &str = "ClientToken=tok-1&Enabled=True&PacketLength=1500&Priority=1&\
        RegionId=cn-hangzhou&Tag.1.Key=k1&Tag.1.Value=v+1%2F%C3%A9&TrafficMirrorFilterId=tmf-1&\
        TrafficMirrorSessionName=my+session~%2A&TrafficMirrorSourceIds.1=eni-s1&\
        TrafficMirrorSourceIds.2=eni-s2&TrafficMirrorTargetId=eni-t&\
        TrafficMirrorTargetType=NetworkInterface&VirtualNetworkId=10";
    const ACS3_1_SIG: &str = "64237ae782301da657310256e51ffd2b9c9354983368e8348c6c357621258cf9";
    const ACS3_1_SIGNED: &str = "accept;host;user-agent;x-acs-action;x-acs-content-sha256;\
        x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version";

    fn acs3_1_headers() -> Vec<(&'static str, String)> {
        let auth = format!(
            "ACS3-HMAC-SHA256 Credential=testAKID,SignedHeaders={ACS3_1_SIGNED},\
             Signature={ACS3_1_SIG}"
        );
        [
            ("host", "127.0.0.1:18081"),
            ("x-acs-version", "2016-04-28"),
            ("x-acs-action", "CreateTrafficMirrorSession"),
            ("user-agent", UA),
            ("x-acs-date", "2026-11-23T09:17:01Z"),
            ("x-acs-signature-nonce", "9d19537869a10a254303a8e7ed15dd4f"),
            ("accept", "application/json"),
            ("x-acs-content-sha256", crate::EMPTY_SHA256),
            ("x-acs-credentials-provider", "static_ak"),
            ("authorization", &auth),
            ("accept-encoding", "identity"),
            ("content-length", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect()
    }

    fn check_acs3<H: Headers + ?Sized>(req: &Request<'_, H>) -> Result<(), Error> {
        let auth = Acs3Authorization::from_headers(req.headers)?;
        let secret = (auth.credential == AK).then_some(SECRET);
        verify_acs3(req, &auth, secret)
    }

    #[test]
    fn acs3_vector_1_query_parameters() {
        let h = acs3_1_headers();
        let req = Request {
            method: "POST",
            path: "/",
            query: ACS3_1_QUERY,
            headers: &h,
            body: b"",
        };
        let signed: Vec<&str> = ACS3_1_SIGNED.split(';').collect();
        let canonical = acs3_canonical_request(SHA, &req, &signed).unwrap();
        let expected = format!(
            "POST\n/\nClientToken=tok-1&Enabled=True&PacketLength=1500&Priority=1&\
             RegionId=cn-hangzhou&Tag.1.Key=k1&Tag.1.Value=v%201%2F%C3%A9&\
             TrafficMirrorFilterId=tmf-1&TrafficMirrorSessionName=my%20session~%2A&\
             TrafficMirrorSourceIds.1=eni-s1&TrafficMirrorSourceIds.2=eni-s2&\
             TrafficMirrorTargetId=eni-t&TrafficMirrorTargetType=NetworkInterface&\
             VirtualNetworkId=10\n\
             accept:application/json\nhost:127.0.0.1:18081\nuser-agent:{UA}\n\
             x-acs-action:CreateTrafficMirrorSession\n\
             x-acs-content-sha256:{empty}\n\
             x-acs-credentials-provider:static_ak\nx-acs-date:2026-11-23T09:17:01Z\n\
             x-acs-signature-nonce:9d19537869a10a254303a8e7ed15dd4f\nx-acs-version:2016-04-28\n\
             \n{ACS3_1_SIGNED}\n{empty}",
            empty = crate::EMPTY_SHA256
        );
        assert_eq!(canonical, expected);
        let sts = acs3_string_to_sign(SHA, &canonical);
        assert_eq!(
            sts,
            "ACS3-HMAC-SHA256\ndb5135bf1a1bff125f5a44718c524fc0830d7453bcb2318191d126576cb04dd8"
        );
        assert_eq!(acs3_signature(SHA, SECRET, &sts), ACS3_1_SIG);

        // The client side produces the header the SDK sent, byte for byte.
        let value = sign_acs3(&req, AK, SECRET, &signed).unwrap();
        assert_eq!(Some(value.as_str()), h.header("authorization"));

        assert_eq!(check_acs3(&req), Ok(()));
    }

    fn acs3_2_headers() -> Vec<(&'static str, &'static str)> {
        vec![
            ("host", "127.0.0.1:18084"),
            ("x-acs-action", "UpdateTrafficMirrorSessionAttribute"),
            ("x-acs-version", "2016-04-28"),
            ("x-acs-date", "2026-11-23T09:19:35Z"),
            ("x-acs-signature-nonce", "e296d81905af369e90284b1411b7c6f3"),
            ("accept", "application/json"),
            (
                "x-acs-content-sha256",
                "45b1465cb56a3ca1959f291d47f1d27a7765f255dbfc00d98ce91338508a2b22",
            ),
            ("x-acs-credentials-provider", "static_sts"),
            ("x-acs-accesskey-id", "testAKID"),
            ("x-acs-security-token", "sts-token-xyz"),
            ("user-agent", UA),
            ("content-type", "application/x-www-form-urlencoded"),
        ]
    }

    const ACS3_2_SIGNED: &str = "accept;content-type;host;user-agent;x-acs-accesskey-id;\
        x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;\
        x-acs-security-token;x-acs-signature-nonce;x-acs-version";
    const ACS3_2_BODY: &[u8] = b"TrafficMirrorSessionId=tms-1&TrafficMirrorSessionName=a+b%26c";
    const ACS3_2_SIG: &str = "273c06eab410aeb97d2a5109848ddef1c298b1dfae08cf9d1b3c3918df20bc34";

    #[test]
    fn acs3_vector_2_form_body_sts() {
        let h = acs3_2_headers();
        let req = Request {
            method: "POST",
            path: "/",
            query: "RegionId=cn-hangzhou&Enabled=False",
            headers: &h,
            body: ACS3_2_BODY,
        };
        assert_eq!(
            content_sha256(ACS3_2_BODY),
            "45b1465cb56a3ca1959f291d47f1d27a7765f255dbfc00d98ce91338508a2b22"
        );
        assert_eq!(
            acs3_canonical_query(req.query),
            "Enabled=False&RegionId=cn-hangzhou"
        );
        let signed: Vec<&str> = ACS3_2_SIGNED.split(';').collect();
        let canonical = acs3_canonical_request(SHA, &req, &signed).unwrap();
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "2af27fec105be1be34cabf565d059ac965395fdefd19346d63b0a9e1437e4593"
        );
        assert_eq!(
            acs3_signature(SHA, SECRET, &acs3_string_to_sign(SHA, &canonical)),
            ACS3_2_SIG
        );

        let value = sign_acs3(&req, AK, SECRET, &signed).unwrap();
        let mut h2: Vec<(&str, &str)> = h.clone();
        h2.push(("Authorization", &value));
        let req = Request {
            headers: &h2,
            ..req
        };
        assert_eq!(check_acs3(&req), Ok(()));

        // Body parameters are part of what the RPC layer reads.
        let params = rpc_parameters(&req);
        assert_eq!(params.len(), 4);
        assert_eq!(param(&params, "TrafficMirrorSessionName"), Some("a b&c"));
    }

    // ACS3-HMAC-SM3 vectors: the inputs of ACS3 #1 and #2, signed by the Python SDK's own
    // signer (alibabacloud_tea_openapi 0.4.6 `Utils.get_authorization(request,
    // 'ACS3-HMAC-SM3', payload, 'testAKID', 'testSecret')`, payload = `Utils.hash(body,
    // 'ACS3-HMAC-SM3').hex()`, which the SDK also sends as x-acs-content-sha256).
    const SM3_EMPTY: &str = "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b";
    const SM3_1_SIG: &str = "689dd4e4c381f6c4d616be5e01eab23a589e0f822ed72c5a61f4781e4d118fbc";
    const SM3_2_PAYLOAD: &str = "91f59707f9e1f8ff963955effa4df8800b2325fbe414c6f9cedd15e642a12ceb";
    const SM3_2_SIG: &str = "087596078f07f0f161a96ac334ea99613379a84b4eedb2289b10da814d264402";

    /// `headers` with x-acs-content-sha256 and any Authorization replaced.
    fn rehash<'a>(
        headers: &[(&'static str, impl AsRef<str>)],
        payload: &'a str,
        auth: &'a str,
    ) -> Vec<(&'static str, String)> {
        headers
            .iter()
            .filter(|(k, _)| *k != "authorization")
            .map(|(k, v)| {
                let v = if *k == "x-acs-content-sha256" {
                    payload
                } else {
                    v.as_ref()
                };
                (*k, v.to_owned())
            })
            .chain([("authorization", auth.to_owned())])
            .collect()
    }

    #[test]
    fn acs3_sm3_vector_1_query_parameters() {
        let auth = format!(
            "ACS3-HMAC-SM3 Credential=testAKID,SignedHeaders={ACS3_1_SIGNED},Signature={SM3_1_SIG}"
        );
        let h = rehash(&acs3_1_headers(), SM3_EMPTY, &auth);
        let req = Request {
            method: "POST",
            path: "/",
            query: ACS3_1_QUERY,
            headers: &h,
            body: b"",
        };
        assert_eq!(SM3.payload_hash(b""), SM3_EMPTY);
        let signed: Vec<&str> = ACS3_1_SIGNED.split(';').collect();
        let canonical = acs3_canonical_request(SM3, &req, &signed).unwrap();
        // Same canonical request as under SHA-256, except for the payload hash.
        let sha_canonical = acs3_canonical_request(SHA, &req, &signed).unwrap();
        assert_eq!(
            canonical,
            sha_canonical.replace(crate::EMPTY_SHA256, SM3_EMPTY)
        );
        let sts = acs3_string_to_sign(SM3, &canonical);
        assert_eq!(
            sts,
            "ACS3-HMAC-SM3\n5037754666516aa7a80ba953fd60e0b7b4269e13906dcda67c009c585448c51f"
        );
        assert_eq!(acs3_signature(SM3, SECRET, &sts), SM3_1_SIG);
        // The client side produces the SDK's header byte for byte.
        assert_eq!(
            sign_acs3_with(SM3, &req, AK, SECRET, &signed).unwrap(),
            auth
        );
        let parsed = Acs3Authorization::parse(&auth).unwrap();
        assert_eq!(parsed.algorithm, SM3);
        assert_eq!(parsed.to_string(), auth);
        assert_eq!(check_acs3(&req), Ok(()));
        assert_eq!(
            verify_acs3(&req, &parsed, Some("otherSecret")),
            Err(Error::SignatureMismatch)
        );
    }

    #[test]
    fn acs3_sm3_vector_2_form_body_and_tampering() {
        let auth = format!(
            "ACS3-HMAC-SM3 Credential=testAKID,SignedHeaders={ACS3_2_SIGNED},Signature={SM3_2_SIG}"
        );
        let h = rehash(&acs3_2_headers(), SM3_2_PAYLOAD, &auth);
        let good = Request {
            method: "POST",
            path: "/",
            query: "RegionId=cn-hangzhou&Enabled=False",
            headers: &h,
            body: ACS3_2_BODY,
        };
        assert_eq!(SM3.payload_hash(ACS3_2_BODY), SM3_2_PAYLOAD);
        let signed: Vec<&str> = ACS3_2_SIGNED.split(';').collect();
        assert_eq!(
            sign_acs3_with(SM3, &good, AK, SECRET, &signed).unwrap(),
            auth
        );
        assert_eq!(check_acs3(&good), Ok(()));

        // Another body under the same headers: its SM3 hash is not the one sent.
        let body = Request {
            body: b"TrafficMirrorSessionId=tms-2",
            ..good
        };
        assert_eq!(check_acs3(&body), Err(Error::ContentHashMismatch));

        // The SHA-256 of the body in x-acs-content-sha256 does not pass for SM3.
        let sha_hash = content_sha256(ACS3_2_BODY);
        let h_sha = rehash(&h, &sha_hash, &auth);
        let req = Request {
            headers: &h_sha,
            ..good
        };
        assert_eq!(check_acs3(&req), Err(Error::ContentHashMismatch));

        // An SM3 signature relabelled as SHA-256 (or the reverse) fails: the algorithm's name
        // is part of the string to sign and the hashes differ.
        let relabelled = auth.replace("ACS3-HMAC-SM3", "ACS3-HMAC-SHA256");
        let h_rel = rehash(&h, &sha_hash, &relabelled);
        let req = Request {
            headers: &h_rel,
            ..good
        };
        assert_eq!(check_acs3(&req), Err(Error::SignatureMismatch));

        let query = Request {
            query: "RegionId=cn-beijing&Enabled=False",
            ..good
        };
        assert_eq!(check_acs3(&query), Err(Error::SignatureMismatch));
    }

    #[test]
    fn acs3_tampering_fails() {
        let h = acs3_2_headers();
        let auth = format!(
            "ACS3-HMAC-SHA256 Credential=testAKID,SignedHeaders={ACS3_2_SIGNED},\
             Signature={ACS3_2_SIG}"
        );
        let mut h: Vec<(&str, &str)> = h;
        h.push(("authorization", &auth));
        let good = Request {
            method: "POST",
            path: "/",
            query: "RegionId=cn-hangzhou&Enabled=False",
            headers: &h,
            body: ACS3_2_BODY,
        };
        assert_eq!(check_acs3(&good), Ok(()));

        // Body changed but header not: the header no longer matches the body.
        let body = Request {
            body: b"TrafficMirrorSessionId=tms-2&TrafficMirrorSessionName=a+b%26c",
            ..good
        };
        assert_eq!(check_acs3(&body), Err(Error::ContentHashMismatch));

        // Body changed and the header updated to match: the signature no longer matches.
        let new_body: &[u8] = b"TrafficMirrorSessionId=tms-2";
        let new_hash = content_sha256(new_body);
        let mut hb = h.clone();
        hb[6].1 = &new_hash;
        let req = Request {
            headers: &hb,
            body: new_body,
            ..good
        };
        assert_eq!(check_acs3(&req), Err(Error::SignatureMismatch));

        let query = Request {
            query: "RegionId=cn-beijing&Enabled=False",
            ..good
        };
        assert_eq!(check_acs3(&query), Err(Error::SignatureMismatch));

        let path = Request {
            path: "/other",
            ..good
        };
        assert_eq!(check_acs3(&path), Err(Error::SignatureMismatch));

        let mut hh = h.clone();
        hh[1].1 = "DeleteTrafficMirrorSession"; // x-acs-action
        let req = Request {
            headers: &hh,
            ..good
        };
        assert_eq!(check_acs3(&req), Err(Error::SignatureMismatch));

        let mut hd = h.clone();
        hd[3].1 = "2026-11-23T09:19:36Z"; // x-acs-date
        let req = Request {
            headers: &hd,
            ..good
        };
        assert_eq!(check_acs3(&req), Err(Error::SignatureMismatch));

        let parsed = Acs3Authorization::from_headers(&h).unwrap();
        assert_eq!(
            verify_acs3(&good, &parsed, None),
            Err(Error::UnknownAccessKey)
        );
        assert_eq!(
            verify_acs3(&good, &parsed, Some("otherSecret")),
            Err(Error::SignatureMismatch)
        );
        let no_ct: Vec<_> = h
            .iter()
            .filter(|(k, _)| *k != "content-type")
            .cloned()
            .collect();
        let req = Request {
            headers: &no_ct,
            ..good
        };
        assert_eq!(
            check_acs3(&req),
            Err(Error::MissingHeader("content-type".into()))
        );
    }

    #[test]
    fn acs3_round_trip_with_repeated_header() {
        let body = b"Name=x";
        let hash = content_sha256(body);
        let date = format_timestamp(parse_timestamp("2026-01-02T03:04:05Z").unwrap());
        let mut h = vec![
            ("Host", "localhost".to_owned()),
            ("X-Acs-Date", date),
            ("x-acs-content-sha256", hash),
            ("x-acs-custom", " b ".to_owned()),
            ("x-acs-custom", "a".to_owned()),
        ];
        let signed = ["x-acs-date", "Host", "x-acs-custom"];
        let value = {
            let req = Request {
                method: "post",
                path: "",
                query: "Z=1&A=%2a+",
                headers: &h,
                body,
            };
            let canonical = acs3_canonical_request(SHA, &req, &["x-acs-custom"]).unwrap();
            assert!(canonical.contains("\nx-acs-custom:a,b\n"), "{canonical}");
            assert!(
                canonical.starts_with("POST\n/\nA=%2A%20&Z=1\n"),
                "{canonical}"
            );
            sign_acs3(&req, AK, SECRET, &signed).unwrap()
        };
        h.push(("authorization", value));
        let req = Request {
            method: "POST",
            path: "/",
            query: "A=%2A%20&Z=1",
            headers: &h,
            body,
        };
        assert_eq!(check_acs3(&req), Ok(()));
    }

    #[test]
    fn acs3_authorization_parsing() {
        let want = Acs3Authorization {
            algorithm: SHA,
            credential: "AK",
            signed_headers: vec!["host", "x-acs-date"],
            signature: ACS3_1_SIG,
        };
        for value in [
            format!("ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-date,Signature={ACS3_1_SIG}"),
            format!("ACS3-HMAC-SHA256 Credential=AK, SignedHeaders=host;x-acs-date, Signature={ACS3_1_SIG}"),
            format!(" ACS3-HMAC-SHA256  Credential = AK ,SignedHeaders=host;x-acs-date,  Signature= {ACS3_1_SIG} "),
        ] {
            assert_eq!(Acs3Authorization::parse(&value), Ok(want.clone()), "{value}");
        }
        assert_eq!(
            Acs3Authorization::parse(&format!(
                "ACS3-HMAC-SM3 Credential=AK,SignedHeaders=host;x-acs-date,Signature={ACS3_1_SIG}"
            )),
            Ok(Acs3Authorization {
                algorithm: SM3,
                ..want.clone()
            })
        );
        for other in [
            "ACS3-RSA-SHA256",
            "acs3-hmac-sm3",
            "ACS3-HMAC-SHA1",
            "HMAC-SHA1",
        ] {
            assert_eq!(
                Acs3Authorization::parse(&format!(
                    "{other} Credential=AK,SignedHeaders=host,Signature={ACS3_1_SIG}"
                )),
                Err(Error::UnsupportedAlgorithm(other.into())),
                "{other}"
            );
        }
        for bad in [
            "ACS3-HMAC-SHA256".to_owned(),
            format!("ACS3-HMAC-SHA256 SignedHeaders=host,Signature={ACS3_1_SIG}"),
            format!("ACS3-HMAC-SHA256 Credential=AK,Signature={ACS3_1_SIG}"),
            "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host".to_owned(),
            "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host,Signature=xyz".to_owned(),
            format!("ACS3-HMAC-SHA256 Credential=AK,Credential=B,SignedHeaders=host,Signature={ACS3_1_SIG}"),
        ] {
            assert!(
                matches!(Acs3Authorization::parse(&bad), Err(Error::MalformedAuthorization(_))),
                "{bad}"
            );
        }
    }

    const SHA1_1_QUERY: &str = "Action=GetTrafficMirrorServiceStatus&Format=json&\
        Version=2016-04-28&Timestamp=2026-11-23T09%3A17%3A14Z&\
        SignatureNonce=ffbd09443a4092b4d7a4b8e0ecb801cc&RegionId=cn-hangzhou&\
        SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=testAKID&\
        Signature=j0sXeNaGy7XYwl6spU4k2OsolNk%3D";

    fn check_sha1(method: &str, params: &[(String, String)]) -> Result<(), Error> {
        let ak = rpc_access_key_id(params)?;
        verify_hmac_sha1(method, params, (ak == AK).then_some(SECRET))
    }

    #[test]
    fn hmac_sha1_vector_1() {
        let h: [(&str, &str); 0] = [];
        let req = Request {
            method: "POST",
            path: "/",
            query: SHA1_1_QUERY,
            headers: &h,
            body: b"",
        };
        let params = rpc_parameters(&req);
        assert_eq!(
            hmac_sha1_string_to_sign("POST", &params),
            "POST&%2F&AccessKeyId%3DtestAKID%26Action%3DGetTrafficMirrorServiceStatus%26\
             Format%3Djson%26RegionId%3Dcn-hangzhou%26SignatureMethod%3DHMAC-SHA1%26\
             SignatureNonce%3Dffbd09443a4092b4d7a4b8e0ecb801cc%26SignatureVersion%3D1.0%26\
             Timestamp%3D2026-11-23T09%253A17%253A14Z%26Version%3D2016-04-28"
        );
        assert_eq!(
            sign_hmac_sha1("POST", &params, SECRET),
            "j0sXeNaGy7XYwl6spU4k2OsolNk="
        );
        assert_eq!(check_sha1("POST", &params), Ok(()));
        assert_eq!(rpc_access_key_id(&params), Ok("testAKID"));
        let ts = param(&params, "Timestamp").unwrap();
        let now = parse_timestamp("2026-11-23T09:30:00Z").unwrap();
        assert!(check_skew(ts, now, DEFAULT_MAX_SKEW).is_ok());
    }

    fn sha1_2_params() -> Vec<(String, String)> {
        let mut params = form_decode(ACS3_1_QUERY);
        for (k, v) in [
            ("Action", "CreateTrafficMirrorSession"),
            ("Format", "json"),
            ("Version", "2016-04-28"),
            ("Timestamp", "2026-11-23T09:17:14Z"),
            ("SignatureNonce", "6dc00ea12837f776bf3a1fdd194ff938"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("AccessKeyId", "testAKID"),
        ] {
            params.push((k.to_owned(), v.to_owned()));
        }
        params
    }

    #[test]
    fn hmac_sha1_vector_2() {
        let mut params = sha1_2_params();
        let sts = hmac_sha1_string_to_sign("POST", &params);
        assert!(
            sts.contains("Tag.1.Value%3Dv%25201%252F%25C3%25A9"),
            "{sts}"
        );
        let sig = sign_hmac_sha1("POST", &params, SECRET);
        assert_eq!(sig, "ZwPqs82Pf96jdj4nuEOF/QQp/XM=");
        params.push(("Signature".to_owned(), sig));
        assert_eq!(check_sha1("POST", &params), Ok(()));
    }

    #[test]
    fn hmac_sha1_form_body_round_trip_and_tampering() {
        // Parameters split between query and form body, as TF sends them.
        let mut params = sha1_2_params();
        let sig = sign_hmac_sha1("POST", &params, SECRET);
        params.push(("Signature".to_owned(), sig));
        let encode = |ps: &[(String, String)]| {
            ps.iter()
                .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
                .collect::<Vec<_>>()
                .join("&")
        };
        let (q, b) = params.split_at(5);
        let query = encode(q);
        let body = encode(b);
        let h = [(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )];
        let req = Request {
            method: "POST",
            path: "/",
            query: &query,
            headers: &h,
            body: body.as_bytes(),
        };
        assert_eq!(check_sha1("POST", &rpc_parameters(&req)), Ok(()));

        // Changing the method, a query parameter or a body parameter breaks the signature.
        assert_eq!(
            check_sha1("GET", &rpc_parameters(&req)),
            Err(Error::SignatureMismatch)
        );
        let tampered_query = query.replace("tok-1", "tok-2");
        let req2 = Request {
            query: &tampered_query,
            ..req
        };
        assert_eq!(
            check_sha1("POST", &rpc_parameters(&req2)),
            Err(Error::SignatureMismatch)
        );
        let tampered_body = body.replace("eni-t", "eni-x");
        let req3 = Request {
            body: tampered_body.as_bytes(),
            ..req
        };
        assert_eq!(
            check_sha1("POST", &rpc_parameters(&req3)),
            Err(Error::SignatureMismatch)
        );
        let tampered_ts = body.replace("09%3A17%3A14Z", "09%3A17%3A15Z");
        assert_ne!(tampered_ts, body);
        let req4 = Request {
            body: tampered_ts.as_bytes(),
            ..req
        };
        assert_eq!(
            check_sha1("POST", &rpc_parameters(&req4)),
            Err(Error::SignatureMismatch)
        );
        // A body that is not a form is not a parameter source, so its parameters are missing.
        let json = [("Content-Type", "application/json")];
        let req5 = Request {
            headers: &json,
            ..req
        };
        assert!(check_sha1("POST", &rpc_parameters(&req5)).is_err());
    }

    #[test]
    fn hmac_sha1_check_errors() {
        let params = sha1_2_params();
        assert_eq!(
            verify_hmac_sha1("POST", &params, Some(SECRET)),
            Err(Error::MissingParameter("Signature".into()))
        );
        let mut with_sig = params.clone();
        with_sig.push(("Signature".into(), "x".into()));
        assert_eq!(
            verify_hmac_sha1("POST", &with_sig, None),
            Err(Error::UnknownAccessKey)
        );
        let other: Vec<(String, String)> = with_sig
            .iter()
            .map(|(k, v)| {
                let v = if k == "SignatureMethod" {
                    "HMAC-SHA256"
                } else {
                    v
                };
                (k.clone(), v.to_owned())
            })
            .collect();
        assert_eq!(
            verify_hmac_sha1("POST", &other, Some(SECRET)),
            Err(Error::UnsupportedAlgorithm("HMAC-SHA256".into()))
        );
        let no_ak: Vec<_> = params
            .iter()
            .filter(|(k, _)| k != "AccessKeyId")
            .cloned()
            .collect();
        assert_eq!(
            rpc_access_key_id(&no_ak),
            Err(Error::MissingParameter("AccessKeyId".into()))
        );
    }

    #[test]
    fn form_decoding_and_pct() {
        assert_eq!(
            form_decode("a=v+1%2F%C3%A9&b=%2B&c&&d=x=y"),
            vec![
                ("a".to_owned(), "v 1/é".to_owned()),
                ("b".to_owned(), "+".to_owned()),
                ("c".to_owned(), String::new()),
                ("d".to_owned(), "x=y".to_owned()),
            ]
        );
        // One parameter, decoded alone, the first of its (decoded) key as form_decode finds.
        let raw = "A%63cessKeyId=x&AccessKeyId=a+b%2B&Ke%79=c&k=%FF";
        assert_eq!(form_value(raw, "AccessKeyId").as_deref(), Some("x"));
        assert_eq!(
            form_value(&raw[16..], "AccessKeyId").as_deref(),
            Some("a b+")
        );
        assert_eq!(form_value(raw, "Key").as_deref(), Some("c"));
        assert_eq!(form_value(raw, "Acc").as_deref(), None);
        assert_eq!(form_value(raw, "k").as_deref(), Some("\u{FFFD}"));
        assert_eq!(form_decode_component("plain"), "plain");
        assert_eq!(pct("my session~*/é"), "my%20session~%2A%2F%C3%A9");
        // Encoded-key byte order, as the reference requires.
        assert_eq!(
            acs3_canonical_query("Tag.2.Key=b&Tag.10.Key=a&Tag.1.Key=c&E="),
            "E=&Tag.1.Key=c&Tag.10.Key=a&Tag.2.Key=b"
        );
    }

    #[test]
    fn timestamps() {
        let t = parse_timestamp("2026-11-23T09:17:01Z").unwrap();
        assert_eq!(format_timestamp(t), "2026-11-23T09:17:01Z");
        for bad in [
            "2026-11-23T09:17:01",
            "20261123T091701Z",
            "2026-11-23 09:17:01Z",
            "2026-02-30T00:00:00Z",
        ] {
            assert!(
                matches!(parse_timestamp(bad), Err(Error::BadTimestamp(_))),
                "{bad}"
            );
        }
        let now = parse_timestamp("2026-11-23T09:32:02Z").unwrap();
        assert!(matches!(
            check_skew("2026-11-23T09:17:01Z", now, DEFAULT_MAX_SKEW),
            Err(Error::SkewedTimestamp { .. })
        ));
        assert_eq!(
            check_skew("2026-11-23T09:17:02Z", now, DEFAULT_MAX_SKEW),
            Ok(parse_timestamp("2026-11-23T09:17:02Z").unwrap())
        );
    }
}
