//! Typed identifiers. Canonical ids are UUIDs (v4); a project id is 32 lower-case hex digits,
//! as in Huawei Cloud. Typing them keeps a filter id from being passed where a port id belongs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            /// Accepts the hyphenated form only, so that one resource has one spelling.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                if s.len() != 36 {
                    return Err(Uuid::try_parse("x").unwrap_err());
                }
                Uuid::try_parse(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A traffic mirror session.
    SessionId
);
uuid_id!(
    /// A traffic mirror filter.
    FilterId
);
uuid_id!(
    /// A traffic mirror filter rule.
    RuleId
);
uuid_id!(
    /// A port (elastic network interface).
    PortId
);
uuid_id!(
    /// A load balancer: a session target whose members share the copies.
    LoadBalancerId
);
uuid_id!(
    /// An elastic IP (a public address).
    EipId
);

/// A project (tenant): 32 lower-case hexadecimal digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProjectId(String);

impl ProjectId {
    /// A fresh random project id.
    pub fn new() -> Self {
        Self(Uuid::new_v4().simple().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ProjectId {
    fn default() -> Self {
        Self::new()
    }
}

/// The text is not 32 lower-case hexadecimal digits.
#[derive(Debug, thiserror::Error)]
#[error("a project id is 32 lower-case hexadecimal digits")]
pub struct InvalidProjectId;

impl FromStr for ProjectId {
    type Err = InvalidProjectId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidProjectId)
        }
    }
}

impl TryFrom<String> for ProjectId {
    type Error = InvalidProjectId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ProjectId> for String {
    fn from(p: ProjectId) -> String {
        p.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_other_spellings() {
        let id = SessionId::new();
        assert_eq!(id.to_string().parse::<SessionId>().unwrap(), id);
        assert!(id.0.simple().to_string().parse::<SessionId>().is_err());
        assert!("not-a-uuid".parse::<PortId>().is_err());
    }

    #[test]
    fn project_ids_are_32_lower_hex() {
        let p = ProjectId::new();
        assert_eq!(p.as_str().len(), 32);
        assert!(p.as_str().parse::<ProjectId>().is_ok());
        assert!("0123456789ABCDEF0123456789abcdef"
            .parse::<ProjectId>()
            .is_err());
        assert!("0123".parse::<ProjectId>().is_err());
    }
}
