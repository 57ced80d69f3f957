//! Alibaba's prefixed ids over the canonical UUIDs: `tms-`, `tmf-`, `tmr-` and `eni-` followed
//! by the 32 hex digits of the UUID, one-to-one in both directions.

use tmirror_model::ResourceKind;
use uuid::Uuid;

pub fn prefix(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Session => "tms-",
        ResourceKind::Filter => "tmf-",
        ResourceKind::Rule => "tmr-",
        ResourceKind::Port => "eni-",
        // Alibaba's CLB ids start `lb-`; tmirror's are `lb-` + the UUID's 32 hex digits.
        ResourceKind::LoadBalancer => "lb-",
        ResourceKind::Member => "lbm-",
        ResourceKind::Eip => "eip-",
    }
}

/// The face's spelling of a canonical id.
pub fn show(kind: ResourceKind, id: Uuid) -> String {
    // Not `format!`: a describe spells four ids, and the formatting machinery cost 700
    // instructions for each.
    let prefix = prefix(kind);
    let mut shown = String::with_capacity(prefix.len() + uuid::fmt::Simple::LENGTH);
    shown.push_str(prefix);
    shown.push_str(id.simple().encode_lower(&mut Uuid::encode_buffer()));
    shown
}

/// The canonical id an Alibaba id names; `None` when the prefix is not the kind's or the rest
/// is not 32 hex digits. Upper-case hex is accepted (it names the same UUID).
pub fn parse(kind: ResourceKind, s: &str) -> Option<Uuid> {
    let rest = s.trim().strip_prefix(prefix(kind))?;
    if rest.len() != 32 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Uuid::try_parse(rest).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let u = Uuid::new_v4();
        let s = show(ResourceKind::Session, u);
        assert_eq!(s, format!("tms-{}", u.simple()));
        assert_eq!(parse(ResourceKind::Session, &s), Some(u));
        assert_eq!(
            parse(
                ResourceKind::Session,
                &s.to_uppercase().replace("TMS-", "tms-")
            ),
            Some(u)
        );
        assert_eq!(parse(ResourceKind::Filter, &s), None);
        assert_eq!(parse(ResourceKind::Session, "tms-123"), None);
        assert_eq!(
            parse(ResourceKind::Session, &format!("tms-{}", u.hyphenated())),
            None
        );
    }
}
