//! Huawei Cloud `SDK-HMAC-SHA256` request signature (the scheme of `huaweicloudsdkcore`'s
//! `Signer`), as described in `huawei-api.md` §9, and its SM3 twin `SDK-HMAC-SM3` (the SDK's
//! `SM3Signer`, chosen with `HttpConfig.signing_algorithm = SigningAlgorithm.HMAC_SM3`).
//!
//! The client sends `X-Sdk-Date: YYYYMMDDTHHMMSSZ` and
//! `Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<h1;h2>, Signature=<hex>`.
//! The signature is a hex HMAC-SHA256, keyed with the secret key, over
//! `SDK-HMAC-SHA256\n<X-Sdk-Date>\n<hex SHA-256 of the canonical request>`.
//! `SDK-HMAC-SM3` is the same with SM3 for every hash and HMAC, and with `X-Sdk-Content-Sm3`
//! in place of `X-Sdk-Content-Sha256` ([`Algorithm`]).
//!
//! Server side: [`Authorization::from_headers`] to learn the access key and algorithm, look the
//! secret up, then [`verify`]. Client side: [`sign`] (or [`sign_with`] for SM3) and put the
//! result in `Authorization`.

use std::fmt;

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::{ct_eq, encode_unreserved, split_query, HashFn, Headers, Request};

/// Name of the default algorithm, HMAC-SHA256 ([`Algorithm::HmacSha256`]).
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// Name of the SM3 algorithm ([`Algorithm::HmacSm3`]). The SDK's other algorithms (ECDSA,
/// SM2-SM3, the derived-key V11) are not accepted.
pub const SM3_ALGORITHM: &str = "SDK-HMAC-SM3";
/// Header carrying the signing time, which is also part of the string to sign.
pub const DATE_HEADER: &str = "X-Sdk-Date";
/// Header whose literal value replaces the body hash under SDK-HMAC-SHA256 (the SDK sends
/// `UNSIGNED-PAYLOAD` for content types other than JSON and BSON).
pub const CONTENT_SHA256_HEADER: &str = "X-Sdk-Content-Sha256";
/// The same header under SDK-HMAC-SM3.
pub const CONTENT_SM3_HEADER: &str = "X-Sdk-Content-Sm3";
/// The value of [`CONTENT_SHA256_HEADER`] that opts the body out of the signature.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Clock skew the Huawei gateway allows between `X-Sdk-Date` and the server clock.
pub const DEFAULT_MAX_SKEW: Duration = Duration::minutes(15);

const DATE_FORMAT: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

/// The signing algorithms accepted, named by the first word of `Authorization`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `SDK-HMAC-SHA256`, the SDK's default.
    #[default]
    HmacSha256,
    /// `SDK-HMAC-SM3`: SM3 for the payload hash, the canonical-request hash and the HMAC.
    HmacSm3,
}

impl Algorithm {
    /// Every accepted algorithm.
    pub const ALL: [Algorithm; 2] = [Algorithm::HmacSha256, Algorithm::HmacSm3];

    /// The name in `Authorization` and in the first line of the string to sign.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => ALGORITHM,
            Algorithm::HmacSm3 => SM3_ALGORITHM,
        }
    }

    /// The algorithm of that name (exact, case-sensitive, as the gateway matches it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The header whose literal value replaces the body hash under this algorithm.
    pub fn content_header(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => CONTENT_SHA256_HEADER,
            Algorithm::HmacSm3 => CONTENT_SM3_HEADER,
        }
    }

    /// Lower-case hex hash of `data` (SHA-256 or SM3).
    pub fn hash_hex(self, data: &[u8]) -> String {
        self.hash_fn().hex(data)
    }

    fn hash_fn(self) -> HashFn {
        match self {
            Algorithm::HmacSha256 => HashFn::Sha256,
            Algorithm::HmacSm3 => HashFn::Sm3,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why signing or verification failed; each variant names one check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A required header is absent: `Authorization`, `X-Sdk-Date`, or one listed in
    /// `SignedHeaders`.
    #[error("missing header {0}")]
    MissingHeader(String),
    /// `Authorization` could not be parsed.
    #[error("malformed Authorization header: {0}")]
    MalformedAuthorization(&'static str),
    /// `Authorization` names an algorithm other than `SDK-HMAC-SHA256` and `SDK-HMAC-SM3`.
    #[error("unsupported signing algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The secret-key lookup for the access key found nothing.
    #[error("unknown access key")]
    UnknownAccessKey,
    /// `X-Sdk-Date` (or the date given to [`sign`]) is not `YYYYMMDDTHHMMSSZ`.
    #[error("malformed X-Sdk-Date {0:?}, expected YYYYMMDDTHHMMSSZ")]
    BadDate(String),
    /// `X-Sdk-Date` is further from the server clock than the allowed skew.
    #[error("X-Sdk-Date {date} differs from server time by more than {max_skew}")]
    SkewedDate {
        /// The received value.
        date: String,
        /// The allowed skew.
        max_skew: Duration,
    },
    /// `X-Sdk-Content-Sha256` (`X-Sdk-Content-Sm3` under SM3) carries a hash that is not the
    /// hash of the body received.
    #[error("the content hash header does not match the body")]
    ContentHashMismatch,
    /// [`sign`] only: the date argument differs from the `X-Sdk-Date` header being sent, so
    /// the server would verify against a different string to sign.
    #[error("date argument differs from the X-Sdk-Date header")]
    DateMismatch,
    /// The signature does not match the request.
    #[error("signature mismatch")]
    SignatureMismatch,
}

/// Parsed `Authorization: SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...`
/// (or `SDK-HMAC-SM3 ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// The algorithm the client signed with.
    pub algorithm: Algorithm,
    /// The access key (AK) the client claims.
    pub access: &'a str,
    /// Signed header names in the order received (the client sends them lower case, sorted).
    pub signed_headers: Vec<&'a str>,
    /// Hex signature, as received.
    pub signature: &'a str,
}

impl<'a> Authorization<'a> {
    /// Parses an `Authorization` value. Spaces around the algorithm, the commas and the `=`
    /// signs are optional: the SDK sends `, ` but other clients may not.
    pub fn parse(value: &'a str) -> Result<Self, Error> {
        let value = value.trim();
        let (algorithm, rest) = value.split_once(|c: char| c.is_ascii_whitespace()).ok_or(
            Error::MalformedAuthorization("no credentials after the algorithm"),
        )?;
        let algorithm = Algorithm::from_name(algorithm)
            .ok_or_else(|| Error::UnsupportedAlgorithm(algorithm.to_owned()))?;
        let (mut access, mut signed, mut signature) = (None, None, None);
        for field in rest.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let (key, val) = field
                .split_once('=')
                .ok_or(Error::MalformedAuthorization("field without '='"))?;
            let slot = match key.trim() {
                "Access" => &mut access,
                "SignedHeaders" => &mut signed,
                "Signature" => &mut signature,
                // Unknown fields are not covered by anything we check; ignoring them keeps us
                // compatible with clients that add informational fields.
                _ => continue,
            };
            if slot.replace(val.trim()).is_some() {
                return Err(Error::MalformedAuthorization("repeated field"));
            }
        }
        let access = access
            .filter(|a| !a.is_empty())
            .ok_or(Error::MalformedAuthorization("missing Access"))?;
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
        Ok(Authorization {
            algorithm,
            access,
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

impl fmt::Display for Authorization<'_> {
    /// Formats the header value the way the SDK does (comma and one space).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} Access={}, SignedHeaders={}, Signature={}",
            self.algorithm.name(),
            self.access,
            self.signed_headers.join(";"),
            self.signature
        )
    }
}

/// What a successful [`verify`] established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// False when the client sent `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD` (or another literal
    /// that is not a hash): the headers are authentic but the body is not covered, so a server
    /// that needs an authentic body should reject such requests.
    pub payload_signed: bool,
}

/// Percent-decodes to text. Invalid UTF-8 becomes U+FFFD, as Python's `unquote` does, so that
/// odd input canonicalises the way the SDK would canonicalise it.
fn decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

/// Canonical URI (§9.2 step 3): decode the raw path, split on `/`, encode each segment with the
/// unreserved-only encoder, join with `/`, and append `/` unless the result already ends in one.
pub fn canonical_uri(raw_path: &str) -> String {
    let decoded = decode(raw_path);
    let mut uri = decoded
        .split('/')
        .map(|segment| encode_unreserved(segment.as_bytes()))
        .collect::<Vec<_>>()
        .join("/");
    // The SDK always signs a trailing slash, even though it does not send one.
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Canonical query string (§9.2 step 4): split on `&` and the first `=`, percent-decode (`+`
/// stays a literal plus), sort by key then value, re-encode, join with `&`. Repeated keys stay
/// separate pairs. An empty query gives an empty string.
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = split_query(raw_query)
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    // String ordering is UTF-8 byte order, which equals the code-point order the SDK sorts by.
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                encode_unreserved(k.as_bytes()),
                encode_unreserved(v.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Payload hash (§9.2 step 6): the hash of nothing for an empty body; otherwise the literal
/// value of the algorithm's content header (`X-Sdk-Content-Sha256` / `X-Sdk-Content-Sm3`) if
/// present; otherwise the hex hash of the body.
pub fn payload_hash<H: Headers + ?Sized>(algorithm: Algorithm, headers: &H, body: &[u8]) -> String {
    if body.is_empty() {
        return algorithm.hash_hex(b"");
    }
    match headers.header(algorithm.content_header()) {
        Some(literal) => literal.to_owned(),
        None => algorithm.hash_hex(body),
    }
}

/// `name:value\n` for each signed header; values are trimmed, inner whitespace kept. Several
/// values of one header are joined with `,`, which is how HTTP folds repeated headers.
fn canonical_headers<H: Headers + ?Sized>(
    headers: &H,
    signed_headers: &[&str],
) -> Result<String, Error> {
    let mut out = String::new();
    for name in signed_headers {
        let values = headers.header_values(name);
        if values.is_empty() {
            return Err(Error::MissingHeader((*name).to_owned()));
        }
        let joined = values
            .iter()
            .map(|v| v.trim())
            .collect::<Vec<_>>()
            .join(",");
        out.push_str(&name.to_ascii_lowercase());
        out.push(':');
        out.push_str(&joined);
        out.push('\n');
    }
    Ok(out)
}

/// Canonical request (§9.2 step 7) over the given signed header names, in the given order.
/// Fails with [`Error::MissingHeader`] if a signed header is absent.
pub fn canonical_request<H: Headers + ?Sized>(
    algorithm: Algorithm,
    req: &Request<'_, H>,
    signed_headers: &[&str],
) -> Result<String, Error> {
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        canonical_uri(req.path),
        canonical_query(req.query),
        canonical_headers(req.headers, signed_headers)?,
        signed_headers.join(";"),
        payload_hash(algorithm, req.headers, req.body),
    ))
}

/// String to sign (§9.2 step 8): the algorithm's name, the date, and the hex hash of the
/// canonical request.
pub fn string_to_sign(algorithm: Algorithm, sdk_date: &str, canonical_request: &str) -> String {
    format!(
        "{}\n{sdk_date}\n{}",
        algorithm.name(),
        algorithm.hash_hex(canonical_request.as_bytes())
    )
}

/// Hex HMAC (SHA-256 or SM3) of the string to sign, keyed with the secret key (§9.2 step 9).
pub fn signature(algorithm: Algorithm, secret_key: &str, string_to_sign: &str) -> String {
    algorithm
        .hash_fn()
        .hmac_hex(secret_key.as_bytes(), string_to_sign.as_bytes())
}

/// Parses an `X-Sdk-Date` value (`YYYYMMDDTHHMMSSZ`, UTC).
pub fn parse_sdk_date(value: &str) -> Result<OffsetDateTime, Error> {
    PrimitiveDateTime::parse(value, DATE_FORMAT)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| Error::BadDate(value.to_owned()))
}

/// Formats a time as an `X-Sdk-Date` value (converted to UTC, whole seconds).
pub fn format_sdk_date(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(DATE_FORMAT)
        .expect("four-digit years format")
}

/// Client side: computes the SDK-HMAC-SHA256 `Authorization` header value for `req`.
///
/// `req.headers` must already hold every header named in `signed_headers` (including
/// `X-Sdk-Date: <sdk_date>` and `Host`), and the request must be sent with exactly this path,
/// query and body. Names are lower-cased and sorted here, as the SDK does. Send the query as
/// [`canonical_query`] gives it, as the SDK does, so that no proxy re-encodes it.
pub fn sign<H: Headers + ?Sized>(
    req: &Request<'_, H>,
    access_key: &str,
    secret_key: &str,
    sdk_date: &str,
    signed_headers: &[&str],
) -> Result<String, Error> {
    sign_with(
        Algorithm::HmacSha256,
        req,
        access_key,
        secret_key,
        sdk_date,
        signed_headers,
    )
}

/// [`sign`] with another algorithm, e.g. [`Algorithm::HmacSm3`].
pub fn sign_with<H: Headers + ?Sized>(
    algorithm: Algorithm,
    req: &Request<'_, H>,
    access_key: &str,
    secret_key: &str,
    sdk_date: &str,
    signed_headers: &[&str],
) -> Result<String, Error> {
    parse_sdk_date(sdk_date)?;
    if let Some(sent) = req.headers.header(DATE_HEADER) {
        if sent.trim() != sdk_date {
            return Err(Error::DateMismatch);
        }
    }
    let mut names: Vec<String> = signed_headers
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let canonical = canonical_request(algorithm, req, &names)?;
    let auth = Authorization {
        algorithm,
        access: access_key,
        signed_headers: names,
        signature: &signature(
            algorithm,
            secret_key,
            &string_to_sign(algorithm, sdk_date, &canonical),
        ),
    };
    Ok(auth.to_string())
}

/// Server side: verifies `req` against its parsed `auth` (see [`Authorization::from_headers`]),
/// with the algorithm `auth` names.
///
/// `secret_key` is the result of looking up `auth.access` (`None` → [`Error::UnknownAccessKey`]).
/// `now` is the server clock and `max_skew` the allowed distance of `X-Sdk-Date` from it
/// (normally [`DEFAULT_MAX_SKEW`]). Checks run in the order of §9.2: key, date, signature.
pub fn verify<H: Headers + ?Sized>(
    req: &Request<'_, H>,
    auth: &Authorization<'_>,
    secret_key: Option<&str>,
    now: OffsetDateTime,
    max_skew: Duration,
) -> Result<Verified, Error> {
    let secret_key = secret_key.ok_or(Error::UnknownAccessKey)?;

    let sdk_date = req
        .headers
        .header(DATE_HEADER)
        .ok_or_else(|| Error::MissingHeader(DATE_HEADER.to_owned()))?
        .trim();
    let at = parse_sdk_date(sdk_date)?;
    if !crate::within_skew(at, now, max_skew) {
        return Err(Error::SkewedDate {
            date: sdk_date.to_owned(),
            max_skew,
        });
    }

    // The literal X-Sdk-Content-Sha256 (X-Sdk-Content-Sm3) replaces the body hash. If that
    // header is not itself signed, a man in the middle could swap the body and set the header
    // to the hash of the original body; so a literal that looks like a hash must be the hash of
    // this body.
    let algorithm = auth.algorithm;
    let mut payload_signed = true;
    if !req.body.is_empty() {
        if let Some(literal) = req.headers.header(algorithm.content_header()) {
            let is_hash = literal.len() == 64 && literal.bytes().all(|b| b.is_ascii_hexdigit());
            if is_hash {
                if !literal.eq_ignore_ascii_case(&algorithm.hash_hex(req.body)) {
                    return Err(Error::ContentHashMismatch);
                }
            } else {
                payload_signed = false;
            }
        }
    }

    let canonical = canonical_request(algorithm, req, &auth.signed_headers)?;
    let expected = signature(
        algorithm,
        secret_key,
        &string_to_sign(algorithm, sdk_date, &canonical),
    );
    // Hex case carries no meaning; compare lower case so only real differences fail.
    let received = auth.signature.to_ascii_lowercase();
    if ct_eq(expected.as_bytes(), received.as_bytes()) {
        Ok(Verified { payload_signed })
    } else {
        Err(Error::SignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256_hex;

    const SHA: Algorithm = Algorithm::HmacSha256;
    const SM3: Algorithm = Algorithm::HmacSm3;

    const AK: &str = "AKTESTVECTOR00000001";
    const SK: &str = "SKtestvectorSECRET0123456789abcdefghijkl";
    const PID: &str = "0123456789abcdef0123456789abcdef";
    const SIGNED: &str = "content-type;host;user-agent;x-project-id;x-sdk-date";

    fn headers() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Content-Type", "application/json"),
            ("User-Agent", "test-agent"),
            ("X-Project-Id", PID),
            ("X-Sdk-Date", "20240101T000000Z"),
            ("Host", "127.0.0.1:8080"),
        ]
    }

    fn signed() -> Vec<&'static str> {
        SIGNED.split(';').collect()
    }

    fn now() -> OffsetDateTime {
        parse_sdk_date("20240101T000500Z").unwrap()
    }

    fn with_auth(
        mut h: Vec<(&'static str, &'static str)>,
        sig: &str,
    ) -> Vec<(&'static str, String)> {
        let auth = format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders={SIGNED}, Signature={sig}");
        let mut out: Vec<(&str, String)> = h.drain(..).map(|(k, v)| (k, v.to_owned())).collect();
        out.push(("Authorization", auth));
        out
    }

    /// The same request with other headers (struct update syntax cannot change `H`).
    fn with_headers<'a, H: Headers + ?Sized, G: Headers + ?Sized>(
        req: &Request<'a, G>,
        headers: &'a H,
    ) -> Request<'a, H> {
        Request {
            method: req.method,
            path: req.path,
            query: req.query,
            headers,
            body: req.body,
        }
    }

    fn check_verifies(req: &Request<'_, Vec<(&'static str, String)>>) -> Result<Verified, Error> {
        let auth = Authorization::from_headers(req.headers)?;
        let secret = (auth.access == AK).then_some(SK);
        verify(req, &auth, secret, now(), DEFAULT_MAX_SKEW)
    }

    // Vector 1, with every intermediate value the reference gives.
    #[test]
    fn vector_1_get_with_query() {
        let h = headers();
        let path = format!("/v3/{PID}/vpc/traffic-mirror-sessions");
        let req = Request {
            method: "GET",
            path: &path,
            query: "id=a&id=x&limit=2&name=a%20b%2F%C3%A9",
            headers: &h,
            body: b"",
        };
        let canonical = canonical_request(SHA, &req, &signed()).unwrap();
        let expected_canonical = format!(
            "GET\n/v3/{PID}/vpc/traffic-mirror-sessions/\nid=a&id=x&limit=2&name=a%20b%2F%C3%A9\n\
             content-type:application/json\nhost:127.0.0.1:8080\nuser-agent:test-agent\n\
             x-project-id:{PID}\nx-sdk-date:20240101T000000Z\n\n{SIGNED}\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(canonical, expected_canonical);
        let sts = string_to_sign(SHA, "20240101T000000Z", &canonical);
        assert_eq!(
            sts,
            "SDK-HMAC-SHA256\n20240101T000000Z\n\
             1982e4e60cf6db4b3f994535b160c579d7be92dd6634fa3466ecc63d66a42ff5"
        );
        let sig = signature(SHA, SK, &sts);
        assert_eq!(
            sig,
            "82ed0de53f5d49ce4bc62fb4165dcf36a4c7ebcab92e018d47fa44ad5cd25883"
        );

        let auth = sign(&req, AK, SK, "20240101T000000Z", &signed()).unwrap();
        assert_eq!(
            auth,
            format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders={SIGNED}, Signature={sig}")
        );

        let h = with_auth(headers(), &sig);
        let req = with_headers(&req, &h);
        assert_eq!(
            check_verifies(&req),
            Ok(Verified {
                payload_signed: true
            })
        );
    }

    #[test]
    fn vector_2_post_with_body() {
        let body = br#"{"traffic_mirror_filter": {"name": "f1"}}"#;
        let h = headers();
        let path = format!("/v3/{PID}/vpc/traffic-mirror-filters");
        let req = Request {
            method: "POST",
            path: &path,
            query: "",
            headers: &h,
            body,
        };
        assert_eq!(
            payload_hash(SHA, &h, body),
            "a0c5dd3335dd4682b745be180e92bc686000adea9609596d62fc2ab93f17d2e6"
        );
        let canonical = canonical_request(SHA, &req, &signed()).unwrap();
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "7c2d4397c546c2399d3f35ec4858929475ce329597df38c32b40730fb7a6b4ca"
        );
        let sig = "d83ce9758e6aad848fed71f8d291145f4279fe37f9bee9d4570f558492f41e4b";
        assert_eq!(
            signature(
                SHA,
                SK,
                &string_to_sign(SHA, "20240101T000000Z", &canonical)
            ),
            sig
        );
        let h = with_auth(headers(), sig);
        assert!(check_verifies(&with_headers(&req, &h)).is_ok());
    }

    #[test]
    fn vector_3_delete() {
        let h = headers();
        let path = format!(
            "/v3/{PID}/vpc/traffic-mirror-filter-rules/0f0e0d0c-0000-4000-8000-000000000001"
        );
        let req = Request {
            method: "DELETE",
            path: &path,
            query: "",
            headers: &h,
            body: b"",
        };
        let canonical = canonical_request(SHA, &req, &signed()).unwrap();
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "f61545f73b4640f659b84e4c99951757f53294dd8039e9f9aef8350f689b27ad"
        );
        let sig = "5334045a7a5d3825269a8e7ed021497e4efdf2ce70ab67029f915394c206a8a8";
        assert_eq!(
            signature(
                SHA,
                SK,
                &string_to_sign(SHA, "20240101T000000Z", &canonical)
            ),
            sig
        );
        let h = with_auth(headers(), sig);
        assert!(check_verifies(&with_headers(&req, &h)).is_ok());
    }

    // SDK-HMAC-SM3 vectors: the inputs of vectors 1–3, signed by huaweicloudsdkcore 3.1.219's
    // own `SM3Signer` (SdkRequest with these headers, `SM3Signer(credentials).sign(request)`).
    const SM3_EMPTY: &str = "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b";

    fn sm3_auth(sig: &str) -> String {
        format!("SDK-HMAC-SM3 Access={AK}, SignedHeaders={SIGNED}, Signature={sig}")
    }

    /// Checks one SM3 vector: the string to sign's hash, the signature, that the client side
    /// reproduces the SDK's Authorization, and that the server side verifies it.
    fn check_sm3_vector(
        req: &Request<'_, Vec<(&'static str, &'static str)>>,
        sts_hash: &str,
        sig: &str,
    ) {
        let canonical = canonical_request(SM3, req, &signed()).unwrap();
        let sts = string_to_sign(SM3, "20240101T000000Z", &canonical);
        assert_eq!(sts, format!("SDK-HMAC-SM3\n20240101T000000Z\n{sts_hash}"));
        assert_eq!(signature(SM3, SK, &sts), sig);
        let value = sign_with(SM3, req, AK, SK, "20240101T000000Z", &signed()).unwrap();
        assert_eq!(value, sm3_auth(sig));

        let mut h: Vec<(&str, String)> = req
            .headers
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect();
        h.push(("Authorization", value));
        let signed_req = with_headers(req, &h);
        assert_eq!(
            check_verifies(&signed_req),
            Ok(Verified {
                payload_signed: true
            })
        );
        let auth = Authorization::from_headers(&h).unwrap();
        assert_eq!(auth.algorithm, SM3);
        assert_eq!(
            verify(&signed_req, &auth, Some("wrong"), now(), DEFAULT_MAX_SKEW),
            Err(Error::SignatureMismatch)
        );
        // The same signature under the other algorithm's name does not verify.
        let relabelled = Authorization {
            algorithm: SHA,
            ..auth.clone()
        };
        assert_eq!(
            verify(&signed_req, &relabelled, Some(SK), now(), DEFAULT_MAX_SKEW),
            Err(Error::SignatureMismatch)
        );
    }

    #[test]
    fn sm3_vector_1_get_with_query() {
        let h = headers();
        let path = format!("/v3/{PID}/vpc/traffic-mirror-sessions");
        let req = Request {
            method: "GET",
            path: &path,
            query: "id=a&id=x&limit=2&name=a%20b%2F%C3%A9",
            headers: &h,
            body: b"",
        };
        assert_eq!(payload_hash(SM3, &h, b""), SM3_EMPTY);
        // The canonical request differs from SHA-256's only in the hash of the empty payload.
        assert_eq!(
            canonical_request(SM3, &req, &signed()).unwrap(),
            canonical_request(SHA, &req, &signed())
                .unwrap()
                .replace(crate::EMPTY_SHA256, SM3_EMPTY)
        );
        check_sm3_vector(
            &req,
            "d6605d3298612ba93d49626274813466217eb7a00af01e8f8bd560cc167d676a",
            "3d9d61baefa9ef97beec1b366725a361ff2c268face52c784b1182248125fd16",
        );
    }

    #[test]
    fn sm3_vector_2_post_with_body() {
        let h = headers();
        let path = format!("/v3/{PID}/vpc/traffic-mirror-filters");
        let req = Request {
            method: "POST",
            path: &path,
            query: "",
            headers: &h,
            body: BODY,
        };
        assert_eq!(
            payload_hash(SM3, &h, BODY),
            "b8bf66ce91560032c0676f1a399d83f1152c5f18e0153908a6231f65e61df638"
        );
        check_sm3_vector(
            &req,
            "271c3cd6a10654a87691f0232fa6155746edfbd630f85b5d48c9b526ea85fd01",
            "7e9c16927af6f8cbc45d889897576ddba314fda59c22323eb1e6f74e39c0c304",
        );
    }

    #[test]
    fn sm3_vector_3_delete() {
        let h = headers();
        let path = format!(
            "/v3/{PID}/vpc/traffic-mirror-filter-rules/0f0e0d0c-0000-4000-8000-000000000001"
        );
        let req = Request {
            method: "DELETE",
            path: &path,
            query: "",
            headers: &h,
            body: b"",
        };
        check_sm3_vector(
            &req,
            "eb9face6a4b6c3beea048c0914d457b5a853d9007ff0ab5806985e7f2ced7124",
            "651a7108cf80239e24d57f022724ccb1fc05a7d06e634a1dfc7fa63563d541df",
        );
    }

    #[test]
    fn sm3_content_header() {
        // Under SM3 the literal comes from X-Sdk-Content-Sm3; X-Sdk-Content-Sha256 is just a
        // header (and the reverse under SHA-256).
        let mut h = headers();
        h.push(("X-Sdk-Content-Sm3", "UNSIGNED-PAYLOAD"));
        assert_eq!(payload_hash(SM3, &h, b"binary"), "UNSIGNED-PAYLOAD");
        assert_eq!(payload_hash(SHA, &h, b"binary"), sha256_hex(b"binary"));
        let req = Request {
            method: "POST",
            path: "/v1/upload",
            query: "",
            headers: &h,
            body: b"binary",
        };
        let value = sign_with(SM3, &req, AK, SK, "20240101T000000Z", &signed()).unwrap();
        let auth = Authorization::parse(&value).unwrap();
        let other = Request {
            body: b"other",
            ..req
        };
        assert_eq!(
            verify(&other, &auth, Some(SK), now(), DEFAULT_MAX_SKEW),
            Ok(Verified {
                payload_signed: false
            })
        );

        // A pinned hash in the unsigned header must be the SM3 of this body: a swapped body
        // with the old hash is caught, and so is the SHA-256 of the right body.
        let sm3_of_body = SM3.hash_hex(BODY);
        // Vector 2 with `pinned` in X-Sdk-Content-Sm3, sent with `body`.
        let pinned_verifies = |pinned: String, body: &[u8]| {
            let mut h: Vec<(&str, String)> = headers()
                .into_iter()
                .map(|(k, v)| (k, v.to_owned()))
                .collect();
            h.push(("X-Sdk-Content-Sm3", pinned));
            h.push((
                "Authorization",
                sm3_auth("7e9c16927af6f8cbc45d889897576ddba314fda59c22323eb1e6f74e39c0c304"),
            ));
            let path = format!("/v3/{PID}/vpc/traffic-mirror-filters");
            let req = Request {
                method: "POST",
                path: &path,
                query: "",
                headers: &h,
                body,
            };
            check_verifies(&req)
        };
        for (pinned, body) in [(sm3_of_body.clone(), &b"{}"[..]), (sha256_hex(BODY), BODY)] {
            assert_eq!(
                pinned_verifies(pinned, body),
                Err(Error::ContentHashMismatch)
            );
        }
        // The correct SM3 pinned: vector 2 still verifies.
        assert!(pinned_verifies(sm3_of_body, BODY).is_ok());
    }

    /// A correctly signed vector-2 request plus its headers, for the tamper tests.
    fn good_post() -> (String, Vec<(&'static str, String)>) {
        let sig = "d83ce9758e6aad848fed71f8d291145f4279fe37f9bee9d4570f558492f41e4b";
        (
            format!("/v3/{PID}/vpc/traffic-mirror-filters"),
            with_auth(headers(), sig),
        )
    }

    const BODY: &[u8] = br#"{"traffic_mirror_filter": {"name": "f1"}}"#;

    #[test]
    fn tampering_fails() {
        let (path, h) = good_post();
        let good = Request {
            method: "POST",
            path: &path,
            query: "",
            headers: &h,
            body: BODY,
        };
        assert!(check_verifies(&good).is_ok());

        let body = Request {
            body: br#"{"traffic_mirror_filter": {"name": "f2"}}"#,
            ..good
        };
        assert_eq!(check_verifies(&body), Err(Error::SignatureMismatch));

        let other_path = format!("/v3/{PID}/vpc/traffic-mirror-sessions");
        let path2 = Request {
            path: &other_path,
            ..good
        };
        assert_eq!(check_verifies(&path2), Err(Error::SignatureMismatch));

        let query = Request {
            query: "limit=1",
            ..good
        };
        assert_eq!(check_verifies(&query), Err(Error::SignatureMismatch));

        let method = Request {
            method: "PUT",
            ..good
        };
        assert_eq!(check_verifies(&method), Err(Error::SignatureMismatch));

        let mut hdr = h.clone();
        hdr[2].1 = "ffffffffffffffffffffffffffffffff".to_owned(); // X-Project-Id
        let req = Request {
            headers: &hdr,
            ..good
        };
        assert_eq!(check_verifies(&req), Err(Error::SignatureMismatch));

        // A date within the skew but not the one signed.
        let mut hdr = h.clone();
        hdr[3].1 = "20240101T000001Z".to_owned();
        let req = Request {
            headers: &hdr,
            ..good
        };
        assert_eq!(check_verifies(&req), Err(Error::SignatureMismatch));

        // Swapping the body and pinning the old hash in an unsigned header is caught.
        let mut hdr = h.clone();
        hdr.push((
            "X-Sdk-Content-Sha256",
            "a0c5dd3335dd4682b745be180e92bc686000adea9609596d62fc2ab93f17d2e6".to_owned(),
        ));
        let req = Request {
            headers: &hdr,
            body: b"{}",
            ..good
        };
        assert_eq!(check_verifies(&req), Err(Error::ContentHashMismatch));

        let mut hdr = h.clone();
        hdr.last_mut().unwrap().1 = hdr.last().unwrap().1.replace("d83c", "d83d");
        let req = Request {
            headers: &hdr,
            ..good
        };
        assert_eq!(check_verifies(&req), Err(Error::SignatureMismatch));
    }

    #[test]
    fn each_check_has_its_error() {
        let (path, h) = good_post();
        let good = Request {
            method: "POST",
            path: &path,
            query: "",
            headers: &h,
            body: BODY,
        };
        let auth = Authorization::from_headers(&h).unwrap();

        assert_eq!(
            verify(&good, &auth, None, now(), DEFAULT_MAX_SKEW),
            Err(Error::UnknownAccessKey)
        );
        let late = parse_sdk_date("20240101T001501Z").unwrap();
        assert!(matches!(
            verify(&good, &auth, Some(SK), late, DEFAULT_MAX_SKEW),
            Err(Error::SkewedDate { .. })
        ));
        let early = parse_sdk_date("20231231T234459Z").unwrap();
        assert!(matches!(
            verify(&good, &auth, Some(SK), early, DEFAULT_MAX_SKEW),
            Err(Error::SkewedDate { .. })
        ));
        // Exactly at the limit is still accepted.
        let edge = parse_sdk_date("20240101T001500Z").unwrap();
        assert!(verify(&good, &auth, Some(SK), edge, DEFAULT_MAX_SKEW).is_ok());
        assert!(matches!(
            verify(&good, &auth, Some(SK), now(), Duration::minutes(1)),
            Err(Error::SkewedDate { .. })
        ));

        let no_date: Vec<_> = h
            .iter()
            .filter(|(k, _)| *k != "X-Sdk-Date")
            .cloned()
            .collect();
        let req = Request {
            headers: &no_date,
            ..good
        };
        assert_eq!(
            verify(&req, &auth, Some(SK), now(), DEFAULT_MAX_SKEW),
            Err(Error::MissingHeader("X-Sdk-Date".into()))
        );

        let mut bad_date = h.clone();
        bad_date[3].1 = "2024-01-01T00:00:00Z".to_owned();
        let req = Request {
            headers: &bad_date,
            ..good
        };
        assert!(matches!(
            verify(&req, &auth, Some(SK), now(), DEFAULT_MAX_SKEW),
            Err(Error::BadDate(_))
        ));

        let no_ua: Vec<_> = h
            .iter()
            .filter(|(k, _)| *k != "User-Agent")
            .cloned()
            .collect();
        let req = Request {
            headers: &no_ua,
            ..good
        };
        assert_eq!(
            verify(&req, &auth, Some(SK), now(), DEFAULT_MAX_SKEW),
            Err(Error::MissingHeader("user-agent".into()))
        );

        let empty: Vec<(&str, &str)> = vec![];
        assert_eq!(
            Authorization::from_headers(&empty),
            Err(Error::MissingHeader("Authorization".into()))
        );
    }

    #[test]
    fn unsigned_payload_is_reported() {
        let mut h = headers();
        h.push(("X-Sdk-Content-Sha256", "UNSIGNED-PAYLOAD"));
        let req = Request {
            method: "POST",
            path: "/v1/upload",
            query: "",
            headers: &h,
            body: b"binary",
        };
        assert_eq!(payload_hash(SHA, &h, b"binary"), "UNSIGNED-PAYLOAD");
        let value = sign(&req, AK, SK, "20240101T000000Z", &signed()).unwrap();
        let auth = Authorization::parse(&value).unwrap();
        let other = Request {
            body: b"other",
            ..req
        };
        assert_eq!(
            verify(&other, &auth, Some(SK), now(), DEFAULT_MAX_SKEW),
            Ok(Verified {
                payload_signed: false
            })
        );
    }

    #[test]
    fn sign_then_verify_round_trip() {
        let date = format_sdk_date(now());
        assert_eq!(date, "20240101T000500Z");
        let h = vec![
            ("Host", "localhost:9000".to_owned()),
            ("Content-Type", "application/json".to_owned()),
            ("X-Sdk-Date", date.clone()),
            ("X-Project-Id", PID.to_owned()),
        ];
        let path = format!("/v3/{PID}/vpc/traffic-mirror-sessions/a%20b/é");
        let req = Request {
            method: "put",
            path: &path,
            query: "z=1&a=%2B+&a=",
            headers: &h,
            body: br#"{"x": 1}"#,
        };
        // Unsorted, mixed case: sign normalises as the SDK does.
        let value = sign(
            &req,
            AK,
            SK,
            &date,
            &["X-Sdk-Date", "host", "Content-Type", "x-project-id"],
        )
        .unwrap();
        let auth = Authorization::parse(&value).unwrap();
        assert_eq!(
            auth.signed_headers,
            vec!["content-type", "host", "x-project-id", "x-sdk-date"]
        );
        assert!(verify(&req, &auth, Some(SK), now(), DEFAULT_MAX_SKEW).is_ok());
        assert_eq!(
            verify(&req, &auth, Some("wrong"), now(), DEFAULT_MAX_SKEW),
            Err(Error::SignatureMismatch)
        );

        assert_eq!(
            sign(&req, AK, SK, "20240101T000000Z", &["host"]),
            Err(Error::DateMismatch)
        );
        assert!(matches!(
            sign(&req, AK, SK, "yesterday", &["host"]),
            Err(Error::BadDate(_))
        ));
        assert_eq!(
            sign(&req, AK, SK, &date, &["x-missing"]),
            Err(Error::MissingHeader("x-missing".into()))
        );
    }

    #[test]
    fn authorization_parsing_tolerates_spacing() {
        let sig = "82ed0de53f5d49ce4bc62fb4165dcf36a4c7ebcab92e018d47fa44ad5cd25883";
        let want = Authorization {
            algorithm: SHA,
            access: "AK",
            signed_headers: vec!["host", "x-sdk-date"],
            signature: sig,
        };
        for value in [
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature={sig}"),
            format!("SDK-HMAC-SHA256 Access=AK,SignedHeaders=host;x-sdk-date,Signature={sig}"),
            format!(
                "  SDK-HMAC-SHA256   Access = AK ,  SignedHeaders= host;x-sdk-date ,Signature ={sig} "
            ),
            format!("SDK-HMAC-SHA256 Signature={sig}, Access=AK, SignedHeaders=host;x-sdk-date,"),
        ] {
            assert_eq!(Authorization::parse(&value), Ok(want.clone()), "{value}");
        }
        assert_eq!(
            Authorization::parse(&format!(
                "SDK-HMAC-SM3 Access=AK, SignedHeaders=host;x-sdk-date, Signature={sig}"
            )),
            Ok(Authorization {
                algorithm: SM3,
                ..want.clone()
            })
        );
        // The SDK's other algorithms, and names that are not exactly one of ours.
        for other in [
            "SDK-ECDSA-P256-SHA256",
            "SDK-SM2-SM3",
            "V11-HMAC-SHA256",
            "sdk-hmac-sm3",
            "SDK-HMAC-SHA1",
        ] {
            assert_eq!(
                Authorization::parse(&format!(
                    "{other} Access=AK, SignedHeaders=host, Signature={sig}"
                )),
                Err(Error::UnsupportedAlgorithm(other.into())),
                "{other}"
            );
        }
        for bad in [
            "SDK-HMAC-SHA256".to_owned(),
            format!("SDK-HMAC-SHA256 SignedHeaders=host, Signature={sig}"),
            format!("SDK-HMAC-SHA256 Access=AK, Signature={sig}"),
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host".to_owned(),
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=abc".to_owned(),
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;;date, Signature={sig}"),
            format!("SDK-HMAC-SHA256 Access=AK, Access=BK, SignedHeaders=host, Signature={sig}"),
            format!("SDK-HMAC-SHA256 Access, SignedHeaders=host, Signature={sig}"),
        ] {
            assert!(
                matches!(
                    Authorization::parse(&bad),
                    Err(Error::MalformedAuthorization(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn canonical_uri_and_query_rules() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/v3/x/"), "/v3/x/");
        assert_eq!(
            canonical_uri("/v3/%7Bproject_id%7D/vpc"),
            "/v3/%7Bproject_id%7D/vpc/"
        );
        // Decoding happens before splitting, so an encoded slash becomes a separator.
        assert_eq!(canonical_uri("/a%2Fb/c d/é"), "/a/b/c%20d/%C3%A9/");
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("b=2&a=+&a=%20&c"), "a=%20&a=%2B&b=2&c=");
        assert_eq!(canonical_query("k=%7e~"), "k=~~");
    }

    #[test]
    fn sdk_date_parsing_is_strict() {
        assert!(parse_sdk_date("20240101T000000Z").is_ok());
        for bad in [
            "20240101T000000",
            "2024-01-01T00:00:00Z",
            "20241301T000000Z",
            "20240101T250000Z",
            "20240101T000000Z ",
            "",
        ] {
            assert!(parse_sdk_date(bad).is_err(), "{bad}");
        }
    }
}
