//! List query strings: filters (exact match; a repeated key means any of its values; different
//! keys must all match), `limit` and `marker`.

use std::collections::BTreeMap;

use tmirror_model::Timestamp;
use tmirror_store::{Condition, ListQuery, Value};

use super::error::invalid;
use crate::http::{ApiError, ErrorFormat};

/// Largest page of the v3 lists.
pub const MAX_LIMIT: u32 = 2000;

/// The decoded query: key → values in arrival order.
pub struct Query(BTreeMap<String, Vec<String>>);

fn decode(s: &str) -> String {
    // `+` stays a plus: the SDK encodes spaces as %20 (see the signature's canonical query).
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for item in raw.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            map.entry(decode(k)).or_default().push(decode(v));
        }
        Query(map)
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> &[String] {
        self.values(key)
    }

    fn values(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    fn single(&self, key: &str, format: ErrorFormat) -> Result<Option<&str>, ApiError> {
        match self.values(key) {
            [] => Ok(None),
            [one] => Ok(Some(one.as_str())),
            _ => Err(invalid(
                format,
                format!("query parameter {key} may be given only once"),
            )),
        }
    }

    /// `limit` (0 or absent → `default`; above `max` is an error) and `marker`.
    pub fn page(
        &self,
        default: u32,
        max: u32,
        format: ErrorFormat,
    ) -> Result<(u32, Option<String>), ApiError> {
        let limit = match self.single("limit", format)? {
            None | Some("") => default,
            Some(s) => match s.parse::<u64>() {
                Ok(0) => default,
                Ok(n) if n <= u64::from(max) => n as u32,
                _ => {
                    return Err(invalid(
                        format,
                        format!("limit must be an integer from 0 to {max}, not {s:?}"),
                    ))
                }
            },
        };
        let marker = self
            .single("marker", format)?
            .filter(|m| !m.is_empty())
            .map(str::to_owned);
        Ok((limit, marker))
    }
}

/// How a query value is typed.
#[derive(Clone, Copy)]
pub enum Kind {
    Text,
    Int,
    Bool,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    Time,
}

fn typed(key: &str, raw: &str, kind: Kind, format: ErrorFormat) -> Result<Value, ApiError> {
    let bad = |what: &str| {
        invalid(
            format,
            format!("query parameter {key} must be {what}, not {raw:?}"),
        )
    };
    Ok(match kind {
        Kind::Text => Value::Text(raw.to_owned()),
        Kind::Int => Value::Int(raw.trim().parse().map_err(|_| bad("an integer"))?),
        Kind::Bool => match raw.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        Kind::Time => {
            let t = time::OffsetDateTime::parse(
                raw.trim(),
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|_| bad("a time like 2023-02-23T06:57:39Z"))?;
            Value::Int(Timestamp(t.unix_timestamp()).0)
        }
    })
}

/// Builds a list query from the documented filter keys; unknown keys are ignored, as Huawei does.
pub fn list_query<F: Copy>(
    q: &Query,
    fields: &[(&str, F, Kind)],
    default_limit: u32,
    max_limit: u32,
    format: ErrorFormat,
) -> Result<ListQuery<F>, ApiError> {
    let mut conditions = Vec::new();
    for &(key, field, kind) in fields {
        let raw = q.values(key);
        if raw.is_empty() {
            continue;
        }
        let values = raw
            .iter()
            .map(|v| typed(key, v, kind, format))
            .collect::<Result<Vec<_>, _>>()?;
        conditions.push(Condition { field, values });
    }
    let (limit, marker) = q.page(default_limit, max_limit, format)?;
    Ok(ListQuery {
        conditions,
        marker,
        limit,
    })
}
