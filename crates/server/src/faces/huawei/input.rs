//! Request-body parsing with Huawei's type quirks: numbers that arrive as strings, booleans
//! that arrive as strings, any letter case for enumerations. Errors name the field.

use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::error::invalid;
use std::ops::RangeInclusive;

use tmirror_model::Ranged;

use crate::http::ApiError;
use crate::http::ErrorFormat;

/// A JSON number or a decimal string.
pub fn lenient_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Int(i)) => Ok(Some(i)),
        Some(Raw::Text(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("expected an integer, got {s:?}"))),
    }
}

/// A JSON boolean or the strings `"true"`/`"false"` (any case).
pub fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bool(bool),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Bool(b)) => Ok(Some(b)),
        Some(Raw::Text(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(de::Error::custom(format!(
                "expected true or false, got {s:?}"
            ))),
        },
    }
}

/// Parses a JSON body into `T`, naming the offending field in the error.
pub fn parse<T: de::DeserializeOwned>(body: &[u8], format: ErrorFormat) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(invalid(
            format,
            "the request body is empty; a JSON object is required",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => {
            de.end()
                .map_err(|e| invalid(format, format!("request body is not valid JSON: {e}")))?;
            Ok(v)
        }
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = if inner.is_syntax() || inner.is_eof() {
                format!("request body is not valid JSON: {inner}")
            } else if path == "." {
                format!("invalid request body: {inner}")
            } else {
                format!("{path}: {inner}")
            };
            Err(invalid(format, message))
        }
    }
}

/// Huawei names: 1–64 characters, letters (Chinese included), digits, `_`, `-`, `.`.
pub fn check_name(field: &'static str, name: &str, format: ErrorFormat) -> Result<(), ApiError> {
    let n = name.chars().count();
    if n == 0
        || n > 64
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(invalid(
            format,
            format!("{field}: must be 1 to 64 letters, digits, '_', '-' or '.', not {name:?}"),
        ));
    }
    Ok(())
}

/// Huawei descriptions: at most 255 characters, no angle brackets.
pub fn check_description(
    field: &'static str,
    d: &str,
    format: ErrorFormat,
) -> Result<(), ApiError> {
    if d.chars().count() > 255 || d.contains(['<', '>']) {
        return Err(invalid(
            format,
            format!("{field}: at most 255 characters, without '<' or '>'"),
        ));
    }
    Ok(())
}

/// A model value from an integer, in the model's range.
pub fn ranged<T: Ranged>(field: &str, value: i64, format: ErrorFormat) -> Result<T, ApiError> {
    ranged_within(field, value, T::LOWEST..=T::HIGHEST, format)
}

/// A model value from an integer, in `range`: the part of the model's range the face documents
/// (Huawei copies at most 1460 bytes of a packet).
pub fn ranged_within<T: Ranged>(
    field: &str,
    value: i64,
    range: RangeInclusive<i64>,
    format: ErrorFormat,
) -> Result<T, ApiError> {
    if !range.contains(&value) {
        return Err(invalid(
            format,
            format!(
                "{field}: must be between {} and {}, not {value}",
                range.start(),
                range.end()
            ),
        ));
    }
    T::new(value).map_err(|e| invalid(format, format!("{field}: {e}")))
}

/// Parses an id field.
pub fn id<T: std::str::FromStr>(field: &str, s: &str, format: ErrorFormat) -> Result<T, ApiError> {
    s.trim()
        .parse()
        .map_err(|_| invalid(format, format!("{field}: {s:?} is not a valid id (a UUID)")))
}
