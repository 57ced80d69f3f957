//! PostgreSQL's side of the dialect differences (see `crate::shared`).

use sqlx::{Postgres, QueryBuilder};

use crate::shared::fields::{coerce, Kind};
use crate::shared::Dialect;
use crate::Value;

/// PostgreSQL's side of the dialect differences.
pub(crate) struct D;

impl Dialect for D {
    type Db = Postgres;
    // Text columns sort by the database's collation otherwise; SQLite's order is bytewise.
    const BYTEWISE: &'static str = " COLLATE \"C\"";
    // One array parameter holds any number of values.
    const IN_CHUNK: usize = usize::MAX;
    const CREDENTIAL_ORDER: &'static str = "seq";
    // The expression of the index `ports_unbound_interface`, exactly.
    const CAPTURE_NAME: &'static str =
        "COALESCE(t.binding_profile::jsonb ->> 'interface_name', 'tap' || substr(t.id, 1, 11))";
    const GREATEST: &'static str = "GREATEST";
    const TAG_PAIRS: &'static str =
        "json_agg(json_build_array(x.seq, x.tag_key, x.tag_value))::text";
    // Each source's port by its key, one at a time: the LATERAL's LIMIT keeps the planner
    // from turning it into a join, which without statistics (a fresh table, or rows newer
    // than the last ANALYZE) it did as a hash of every port of the project, per session.
    // The project is compared outside the LATERAL (PostgreSQL pushes no condition into a
    // subquery with a LIMIT): inside, without statistics, the planner took the project's
    // index for it and walked the project's ports for each source. The agents that reported
    // an unbound port's interface likewise, each by its key (a join hashed every agent).
    const SOURCE_CAPTURES: &'static str = "(SELECT json_agg(c.capture)::text \
         FROM session_sources ss CROSS JOIN LATERAL (SELECT p.project_id, \
         json_build_array(p.id, p.host_id, n.name, CASE WHEN p.host_id <> '' \
         THEN (SELECT COALESCE(json_agg(json_build_array(a.host_id, a.last_seen, \
         a.applied_generation)), '[]') FROM agents a WHERE a.host_id = p.host_id) \
         ELSE (SELECT COALESCE(json_agg(a.agent), '[]') FROM agent_interfaces i \
         CROSS JOIN LATERAL (SELECT json_build_array(a.host_id, a.last_seen, \
         a.applied_generation) AS agent FROM agents a WHERE a.host_id = i.host_id LIMIT 1) a \
         WHERE i.interface = n.name) END) AS capture \
         FROM ports p CROSS JOIN LATERAL (SELECT COALESCE(p.binding_profile::jsonb ->> \
         'interface_name', 'tap' || substr(p.id, 1, 11)) AS name) n \
         WHERE p.id = ss.port_id LIMIT 1) c \
         WHERE ss.session_id = t.id AND c.project_id = t.project_id)";
    const INTERFACE_NAME: &'static str = "(t.binding_profile::jsonb ->> 'interface_name')";
    const FIXED_IP_SUBNET: &'static str =
        "SELECT 1 FROM jsonb_array_elements(t.fixed_ips::jsonb) j \
        WHERE j->>'subnet_id' IN ({})";
    const SECURITY_GROUP: &'static str =
        "SELECT 1 FROM jsonb_array_elements_text(t.security_groups::jsonb) j(v) WHERE j.v IN ({})";

    fn bind_value(v: &Value, kind: Kind) -> Option<Value> {
        coerce(v, kind)
    }

    fn push_in(b: &mut QueryBuilder<'_, Postgres>, values: &[String]) {
        b.push(" = ANY(");
        b.push_bind(values.to_vec());
        b.push(")");
    }
}
