//! RPC parameters: query string and form body merged, flattened lists (`Name.N`) and lists of
//! objects (`Name.N.Field`) with 1-based indices ordered numerically, booleans in any case.

use std::collections::BTreeMap;

use super::error::{illegal, invalid, missing};
use std::ops::RangeInclusive;

use tmirror_model::Ranged;

use crate::http::ApiError;

/// Parameters that belong to the transport or the signature, or that every operation accepts
/// and ignores; they are neither business input nor part of a ClientToken fingerprint.
const IGNORED: &[&str] = &[
    "Action",
    "Version",
    "Format",
    "Timestamp",
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "SecurityToken",
    "OwnerId",
    "OwnerAccount",
    "ResourceOwnerId",
    "ResourceOwnerAccount",
];

/// The fields of one item of a list of objects.
pub type Fields = BTreeMap<String, String>;

/// The business parameters of one request. A repeated key keeps its last value.
#[derive(Debug, Default)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl Params {
    pub fn new(all: &[(String, String)]) -> Self {
        let map = all
            .iter()
            .filter(|(k, _)| !IGNORED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Params { map }
    }

    /// The value, `None` when absent or empty (the SDKs omit unset parameters; an empty value
    /// means the same).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| missing(name))
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| invalid(name, format!("{v:?} is not an integer")))
            })
            .transpose()
    }

    /// An integer in `range` (`IllegalParam.<Name>` otherwise).
    pub fn int_within(
        &self,
        name: &str,
        range: RangeInclusive<i64>,
    ) -> Result<Option<i64>, ApiError> {
        match self.int(name)? {
            Some(v) if !range.contains(&v) => Err(illegal(
                name,
                format!(
                    "must be between {} and {}, not {v}",
                    range.start(),
                    range.end()
                ),
            )),
            other => Ok(other),
        }
    }

    /// A model value, in the model's range.
    pub fn ranged<T: Ranged>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.ranged_within(name, T::LOWEST..=T::HIGHEST)
    }

    /// A model value in `range`: the part of the model's range the face documents (Alibaba
    /// copies at least 64 bytes of a packet).
    pub fn ranged_within<T: Ranged>(
        &self,
        name: &str,
        range: RangeInclusive<i64>,
    ) -> Result<Option<T>, ApiError> {
        self.int_within(name, range)?
            .map(|v| T::new(v).map_err(|e| illegal(name, e)))
            .transpose()
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.get(name)
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(invalid(name, format!("{v:?} is not true or false"))),
            })
            .transpose()
    }

    /// `Name.1`, `Name.2`, ... in numeric order of the index.
    pub fn list(&self, name: &str) -> Result<Vec<String>, ApiError> {
        let mut items = Vec::new();
        for (key, value) in self.with_prefix(name) {
            let index = index_of(name, key)?;
            if value.is_empty() {
                continue;
            }
            items.push((index, value.clone()));
        }
        items.sort_by_key(|(i, _)| *i);
        Ok(items.into_iter().map(|(_, v)| v).collect())
    }

    /// `Name.N.Field` as one map per index, in numeric order; each item also reports its
    /// index (for error messages).
    pub fn objects(&self, name: &str) -> Result<Vec<(u32, Fields)>, ApiError> {
        let mut items: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
        for (key, value) in self.with_prefix(name) {
            let rest = &key[name.len() + 1..];
            let (index, field) = rest
                .split_once('.')
                .ok_or_else(|| invalid(key, format!("expected {name}.N.<Field>")))?;
            let index = parse_index(key, index)?;
            items
                .entry(index)
                .or_default()
                .insert(field.to_owned(), value.clone());
        }
        Ok(items.into_iter().collect())
    }

    fn with_prefix<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a String, &'a String)> {
        self.map.iter().filter(move |(k, _)| {
            k.len() > name.len() + 1 && k.starts_with(name) && k.as_bytes()[name.len()] == b'.'
        })
    }

    /// A hash of the action and every business parameter except `ClientToken`: two requests
    /// with one token are the same request when their fingerprints agree.
    pub fn fingerprint(&self, action: &str) -> String {
        let mut text = String::from(action);
        for (k, v) in &self.map {
            if k == "ClientToken" {
                continue;
            }
            text.push('\n');
            text.push_str(&tmirror_sign::aliyun::pct(k));
            text.push('=');
            text.push_str(&tmirror_sign::aliyun::pct(v));
        }
        tmirror_sign::aliyun::content_sha256(text.as_bytes())
    }
}

fn parse_index(key: &str, index: &str) -> Result<u32, ApiError> {
    match index.parse::<u32>() {
        Ok(i) if i >= 1 && !index.starts_with('+') => Ok(i),
        _ => Err(invalid(key, "list indices are whole numbers from 1")),
    }
}

fn index_of(name: &str, key: &str) -> Result<u32, ApiError> {
    parse_index(key, &key[name.len() + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Params::new(&v)
    }

    #[test]
    fn lists_are_ordered_numerically() {
        let params = p(&[
            ("Ids.10", "j"),
            ("Ids.2", "b"),
            ("Ids.1", "a"),
            ("IdsX.1", "no"),
            ("Action", "X"),
        ]);
        assert_eq!(params.list("Ids").unwrap(), vec!["a", "b", "j"]);
        assert!(params.get("Action").is_none());
        assert!(p(&[("Ids.0", "a")]).list("Ids").is_err());
        assert!(p(&[("Ids.x", "a")]).list("Ids").is_err());
    }

    #[test]
    fn objects_and_booleans() {
        let params = p(&[
            ("Tag.10.Key", "k10"),
            ("Tag.2.Key", "k2"),
            ("Tag.2.Value", "v2"),
            ("DryRun", "TRUE"),
            ("Enabled", "False"),
            ("Bad", "yes"),
        ]);
        let tags = params.objects("Tag").unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].0, 2);
        assert_eq!(tags[0].1["Value"], "v2");
        assert_eq!(tags[1].1["Key"], "k10");
        assert_eq!(params.bool("DryRun").unwrap(), Some(true));
        assert_eq!(params.bool("Enabled").unwrap(), Some(false));
        assert!(params.bool("Bad").is_err());
        assert_eq!(params.bool("Absent").unwrap(), None);
    }

    #[test]
    fn fingerprint_ignores_token_and_signature_parameters() {
        let a = p(&[("A", "1"), ("ClientToken", "t1"), ("SignatureNonce", "n1")]);
        let b = p(&[("A", "1"), ("ClientToken", "t1"), ("SignatureNonce", "n2")]);
        let c = p(&[("A", "2"), ("ClientToken", "t1")]);
        assert_eq!(a.fingerprint("X"), b.fingerprint("X"));
        assert_ne!(a.fingerprint("X"), c.fingerprint("X"));
        assert_ne!(a.fingerprint("X"), a.fingerprint("Y"));
    }
}
