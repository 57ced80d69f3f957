//! SQLite's side of the dialect differences (see `crate::shared`).

use sqlx::{QueryBuilder, Sqlite};

use crate::shared::fields::Kind;
use crate::shared::Dialect;
use crate::Value;

/// SQLite's side of the dialect differences.
pub(crate) struct D;

impl Dialect for D {
    type Db = Sqlite;
    // The default collation, BINARY, compares bytes.
    const BYTEWISE: &'static str = "";
    // Far below SQLite's limit of parameters in one statement (32,766).
    const IN_CHUNK: usize = 500;
    // `credentials` has no `seq` here; its rowid grows with each insert.
    const CREDENTIAL_ORDER: &'static str = "rowid";
    const FIXED_IP_SUBNET: &'static str = "SELECT 1 FROM json_each(t.fixed_ips) j \
        WHERE json_extract(j.value, '$.subnet_id') IN ({})";
    const SECURITY_GROUP: &'static str =
        "SELECT 1 FROM json_each(t.security_groups) j WHERE j.value IN ({})";

    // The expression of the index `ports_unbound_interface`, exactly.
    const CAPTURE_NAME: &'static str = "COALESCE(json_extract(t.binding_profile, '$.interface_name'), 'tap' || substr(t.id, 1, 11))";
    const GREATEST: &'static str = "max";
    const TAG_PAIRS: &'static str = "json_group_array(json_array(x.seq, x.tag_key, x.tag_value))";
    // The agents by a CASE of two lookups by key: an `IN (… UNION ALL …)` built a temporary
    // table per source, twice the cost (measured); the capture name is spelled twice since a
    // subquery in FROM to name it once cost more than evaluating it twice.
    const SOURCE_CAPTURES: &'static str = "(SELECT json_group_array(json_array(p.id, p.host_id, \
         COALESCE(json_extract(p.binding_profile, '$.interface_name'), \
         'tap' || substr(p.id, 1, 11)), CASE WHEN p.host_id <> '' \
         THEN (SELECT json_group_array(json_array(a.host_id, a.last_seen, a.applied_generation)) \
         FROM agents a WHERE a.host_id = p.host_id) \
         ELSE (SELECT json_group_array(json_array(a.host_id, a.last_seen, a.applied_generation)) \
         FROM agent_interfaces i JOIN agents a ON a.host_id = i.host_id \
         WHERE i.interface = COALESCE(json_extract(p.binding_profile, '$.interface_name'), \
         'tap' || substr(p.id, 1, 11))) END)) \
         FROM session_sources ss JOIN ports p ON p.id = ss.port_id \
         WHERE ss.session_id = t.id AND p.project_id = t.project_id)";
    const INTERFACE_NAME: &'static str = "json_extract(t.binding_profile, '$.interface_name')";

    // SQLite compares across types itself (a text value with an integer column by its number).
    fn bind_value(v: &Value, _kind: Kind) -> Option<Value> {
        Some(v.clone())
    }

    fn push_in(b: &mut QueryBuilder<'_, Sqlite>, values: &[String]) {
        b.push(" IN (");
        let mut list = b.separated(", ");
        for v in values {
            list.push_bind(v.clone());
        }
        list.push_unseparated(")");
    }
}
