//! What both back-ends share: their queries and the logic around them, written once.
//!
//! SQLite and PostgreSQL store the same tables and columns, and sqlx's SQLite driver binds
//! `$N` placeholders by number as PostgreSQL does, so one SQL text serves both. The files
//! `reads.rs`, `writes.rs`, `aliyun.rs` and `agents.rs` here are templates: each back-end
//! compiles them as modules of its own (`#[path = "../shared/writes.rs"] mod writes;`), where
//! `super` is that back-end. They use what the back-end's `mod.rs` provides:
//!
//! - `Db`, its `sqlx::Database`, and `D`, its [`Dialect`]: the few points where the two SQL
//!   dialects differ;
//! - `Ops<C>` with `conn()`, the reads over a connection or transaction `C`, and `TxState`,
//!   the state of a write transaction (`tx`, `revision`) with `commit`;
//! - `db_err`, which classifies a driver error.
//!
//! What is genuinely one back-end's own (opening, migrations, how a write transaction begins
//! and commits, PostgreSQL's revision channel) stays in that back-end's `mod.rs`.

pub(crate) mod fields;

use sqlx::QueryBuilder;
use tmirror_model::Protocol;

use crate::Value;
use fields::Kind;

/// Where the SQL of one back-end differs from the other's.
pub(crate) trait Dialect {
    type Db: sqlx::Database;
    /// Appended to a text column in `ORDER BY` for byte order (SQLite's default collation
    /// already is).
    const BYTEWISE: &'static str;
    /// The column that orders credentials by creation.
    const CREDENTIAL_ORDER: &'static str;
    /// At most this many values go into one [`Dialect::push_in`] of a statement that can be
    /// split into several.
    const IN_CHUNK: usize;
    /// Appends "is one of `values`" to a column just pushed.
    fn push_in(b: &mut QueryBuilder<'_, Self::Db>, values: &[String]);
    /// `EXISTS` subqueries over the JSON columns of ports; `{}` is replaced by the value list.
    /// (Addresses have a table of their own, `port_addresses`.)
    const FIXED_IP_SUBNET: &'static str;
    const SECURITY_GROUP: &'static str;
    /// A port's (`t`) binding-profile interface name, as an SQL expression.
    const INTERFACE_NAME: &'static str;
    /// The name of the interface a port (`t`) is captured on when it is bound to no host:
    /// its binding-profile interface name, or by the Neutron convention `tap` + the first 11
    /// characters of its id (`Port::interface_name`); indexed for unbound ports.
    const CAPTURE_NAME: &'static str;
    /// An aggregate over Alibaba tags (`x`) giving the JSON text of their `[seq, key, value]`
    /// triples (or NULL for none), in any order: the reader sorts them by `seq`, the order they
    /// were set in (an aggregate's own `ORDER BY` costs SQLite a temporary b-tree).
    const TAG_PAIRS: &'static str;
    /// A subquery giving the JSON text of `[port id, host id, capture interface, agents]` for
    /// each source port of the session `t` (NULL for none): the capture interface as
    /// `Port::interface_name` names it; the agents `[[host, last seen, applied generation]]`
    /// of the port's host, or for a port bound to none of the hosts that reported that
    /// interface (`agent_interfaces`), each by its key.
    const SOURCE_CAPTURES: &'static str;
    /// The larger of two values: `max` or `GREATEST`.
    const GREATEST: &'static str;
    /// `v` as bound against a column of `kind` in a list query; `None` if it can equal no
    /// value of the column.
    fn bind_value(v: &Value, kind: Kind) -> Option<Value>;
}

/// The wake-up scope of a port (`t`): the host it is bound to, or the interface name it is
/// captured by on any host (see `crate::ChangeScopes`).
pub(crate) fn port_scope<D: Dialect>() -> String {
    format!(
        "CASE WHEN t.host_id <> '' THEN 'host:' || t.host_id ELSE 'interface:' || {} END",
        D::CAPTURE_NAME
    )
}

/// What a committed write transaction returns: its revision, published on the feed, or the
/// feed's current one if it wrote nothing.
pub(crate) fn publish(feed: &tokio::sync::watch::Sender<u64>, revision: Option<i64>) -> u64 {
    match revision {
        Some(r) => {
            advance(feed, r as u64);
            r as u64
        }
        None => *feed.borrow(),
    }
}

/// Raises the revision feed to `revision` if that is newer.
pub(crate) fn advance(feed: &tokio::sync::watch::Sender<u64>, revision: u64) {
    feed.send_if_modified(|current| {
        let newer = revision > *current;
        if newer {
            *current = revision;
        }
        newer
    });
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("model values always serialise")
}

/// The protocol as stored: its lower-case name.
pub(crate) fn protocol_key(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Icmp => "icmp",
        Protocol::Icmpv6 => "icmpv6",
        Protocol::All => "all",
    }
}

/// A stored id, parsed.
pub(crate) fn parse_id<T: std::str::FromStr>(s: String) -> crate::StoreResult<T>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e| crate::StoreError::Corrupt(format!("id: {e}")))
}
