//! The store suite: what every back-end must do, run against each one. Every test runs on
//! SQLite (`sqlite::…`, a fresh file) and on PostgreSQL (`postgres::…`, a fresh database on the
//! server `TMIRROR_TEST_DATABASE_URL` names, dropped afterwards); without that variable the
//! PostgreSQL tests say that they were skipped. Tests of what only a shared database can do
//! (several servers on one database) run on PostgreSQL only.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tmirror_model::*;
use tmirror_store::testdb::TestDatabase;
use tmirror_store::*;

/// One database of one back-end, removed when dropped.
enum Backend {
    // The directory lives as long as the database in it.
    Sqlite(#[allow(dead_code)] tempfile::TempDir, String),
    Postgres(TestDatabase),
}

impl Backend {
    /// The stored secrets, `(access key, secret_key column)`, read past the store.
    async fn stored_secrets(&self) -> Vec<(String, String)> {
        use sqlx::Connection;
        let sql = "SELECT access_key, secret_key FROM credentials ORDER BY access_key";
        match self {
            Backend::Sqlite(_, url) => {
                let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
            }
            Backend::Postgres(db) => {
                let mut c = sqlx::PgConnection::connect(db.url()).await.unwrap();
                sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
            }
        }
    }

    /// Sets a credential's `secret_key` column past the store.
    async fn set_stored_secret(&self, access_key: &str, stored: &str) {
        use sqlx::Connection;
        let sql = "UPDATE credentials SET secret_key = $1 WHERE access_key = $2";
        match self {
            Backend::Sqlite(_, url) => {
                let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
                let q = sqlx::query(sql).bind(stored).bind(access_key);
                q.execute(&mut c).await.unwrap();
            }
            Backend::Postgres(db) => {
                let mut c = sqlx::PgConnection::connect(db.url()).await.unwrap();
                let q = sqlx::query(sql).bind(stored).bind(access_key);
                q.execute(&mut c).await.unwrap();
            }
        }
    }

    /// The bytes of the SQLite database and its WAL; empty for PostgreSQL.
    fn file_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        if let Backend::Sqlite(_, url) = self {
            let path = url.strip_prefix("sqlite:").unwrap();
            for suffix in ["", "-wal"] {
                bytes.extend(std::fs::read(format!("{path}{suffix}")).unwrap_or_default());
            }
        }
        bytes
    }

    fn sqlite() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        Backend::Sqlite(dir, url)
    }

    async fn postgres() -> Option<Backend> {
        TestDatabase::create().await.map(Backend::Postgres)
    }

    fn url(&self) -> &str {
        match self {
            Backend::Sqlite(_, url) => url,
            Backend::Postgres(db) => db.url(),
        }
    }

    /// Brings this (empty) database to the schema before the migration whose file name
    /// contains `before` — what a server of an earlier release left — and runs `statements`
    /// there, past the store. The migrations are the back-end's own files, so the store that
    /// opens the database next finds them applied and runs only the rest.
    async fn at_schema_before(&self, before: &str, statements: &[String]) {
        use sqlx::Connection;
        let kind = match self {
            Backend::Sqlite(..) => "sqlite",
            Backend::Postgres(_) => "postgres",
        };
        let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(kind);
        let mut files: Vec<_> = std::fs::read_dir(&all)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let earlier = tempfile::tempdir().unwrap();
        let mut found = false;
        for f in files {
            if f.file_name().unwrap().to_str().unwrap().contains(before) {
                found = true;
                break;
            }
            std::fs::copy(&f, earlier.path().join(f.file_name().unwrap())).unwrap();
        }
        assert!(found, "no {kind} migration named {before}");
        let migrator = sqlx::migrate::Migrator::new(earlier.path()).await.unwrap();
        match self {
            Backend::Sqlite(_, url) => {
                let mut c = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
                    .await
                    .unwrap();
                migrator.run(&mut c).await.unwrap();
                for s in statements {
                    sqlx::query(s).execute(&mut c).await.unwrap();
                }
                c.close().await.unwrap();
            }
            Backend::Postgres(db) => {
                let mut c = sqlx::PgConnection::connect(db.url()).await.unwrap();
                migrator.run(&mut c).await.unwrap();
                for s in statements {
                    sqlx::query(s).execute(&mut c).await.unwrap();
                }
                c.close().await.unwrap();
            }
        }
    }

    /// Runs `statements` past the store.
    async fn execute(&self, statements: &[&str]) {
        use sqlx::Connection;
        match self {
            Backend::Sqlite(_, url) => {
                let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
                for s in statements {
                    sqlx::query(s).execute(&mut c).await.unwrap();
                }
            }
            Backend::Postgres(db) => {
                let mut c = sqlx::PgConnection::connect(db.url()).await.unwrap();
                for s in statements {
                    sqlx::query(s).execute(&mut c).await.unwrap();
                }
            }
        }
    }

    /// The one number `sql` (literal values only) answers, read past the store.
    async fn number(&self, sql: &str) -> i64 {
        use sqlx::Connection;
        match self {
            Backend::Sqlite(_, url) => {
                let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
            Backend::Postgres(db) => {
                let mut c = sqlx::PgConnection::connect(db.url()).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
        }
    }

    /// The plan the database chooses for `sql` (literal values only), as text.
    async fn plan(&self, sql: &str) -> String {
        use sqlx::Connection;
        match self {
            Backend::Sqlite(_, url) => {
                let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
                let rows: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                        .fetch_all(&mut c)
                        .await
                        .unwrap();
                rows.into_iter().map(|r| r.3 + "\n").collect()
            }
            Backend::Postgres(db) => {
                let mut c = sqlx::PgConnection::connect(db.url()).await.unwrap();
                let rows: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {sql}"))
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
                rows.join("\n")
            }
        }
    }

    /// A store on this database (another one on the same database for each call).
    async fn open(&self) -> Arc<dyn Store> {
        open(self.url(), sealer()).await.expect("open the store")
    }
}

/// The master key of the suite's stores.
fn master_key() -> MasterKey {
    MasterKey::from_bytes([7; MASTER_KEY_LEN])
}

/// What every store of the suite seals credentials' secrets with.
fn sealer() -> SecretSealer {
    SecretSealer::new(master_key(), vec![])
}

/// Written past the test harness's output capture, so that it shows in every run.
fn skipped(test: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: set {} to run the store suite on PostgreSQL (scripts/pg-cluster.sh run cargo test)",
        tmirror_store::testdb::ENV
    );
}

/// Each listed test, once per back-end.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let b = super::Backend::sqlite();
                    super::$name(&b).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(b) = super::Backend::postgres().await else {
                        return super::skipped(concat!(module_path!(), "::", stringify!($name)));
                    };
                    super::$name(&b).await;
                }
            )*
        }
    };
}

/// Tests that need a database shared by several servers: PostgreSQL only.
macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {
        mod shared {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(b) = super::Backend::postgres().await else {
                        return super::skipped(concat!(module_path!(), "::", stringify!($name)));
                    };
                    super::$name(&b).await;
                }
            )*
        }
    };
}

on_both!(
    every_write_transaction_bumps_the_revision_once_and_wakes_watchers,
    sessions_keep_source_order_and_constraints_back_the_rules,
    lists_filter_page_and_stay_within_the_project,
    data_survive_reopening,
    a_waiting_writer_sees_the_commit_before_it,
    concurrent_writers_are_serialised,
    nonces_are_single_use_until_they_expire,
    tags_groups_and_tokens_live_and_die_with_their_resource,
    revisions_and_tombstones_of_the_asynchronous_states,
    agent_bookkeeping_does_not_bump_the_revision,
    ports_by_host_and_list_conditions_of_every_kind,
    counts_are_per_project_and_kind_and_see_the_transaction,
    project_counts_stay_exact_through_creates_deletes_cascades_and_refusals,
    project_counts_of_rows_stored_before_them_are_backfilled,
    tenancy_records_move_the_auth_revision_and_find_ports_by_address_and_interface,
    secret_keys_are_encrypted_at_rest_and_round_trip,
    plaintext_secrets_are_encrypted_when_the_store_opens,
    a_wrong_key_is_refused_and_an_accepted_key_is_re_encrypted,
    host_rows_hold_the_hosts_ports_enabled_sessions_rules_and_targets,
    writes_record_the_hosts_they_concern,
    an_agents_new_interfaces_are_a_change_of_their_own,
    batched_liveness_never_lowers_last_seen_nor_bumps_the_revision,
    agents_are_found_by_a_reported_interface_through_its_own_index,
    a_filters_hosts_are_distinct_pairs_of_where_its_sessions_sources_are_captured,
    load_balancers_round_trip_with_their_members_in_order,
    load_balancer_lists_page_both_ways_filter_and_stay_within_the_project,
    load_balancer_writes_wake_the_hosts_of_the_sessions_aimed_at_them,
    one_server_holds_the_health_lease_at_a_time,
    eips_pools_and_eip_sessions_round_trip_and_wake_the_gateway,
    port_addresses_follow_their_port_and_a_network_holds_an_address_once,
    ports_stored_before_the_address_table_are_found_by_it_after_the_migration,
    list_pages_shows_and_address_lookups_are_served_by_indexes,
    a_sessions_source_captures_are_read_port_by_port_by_key,
    a_pages_source_captures_carry_the_agents_capturing_them,
    a_pages_tags_and_groups_are_read_by_its_resources_ids,
);

on_postgres!(
    servers_starting_together_migrate_once,
    a_commit_on_one_server_wakes_the_watchers_of_another,
    the_feed_catches_up_after_losing_its_connection,
    writers_on_two_servers_are_serialised,
    reads_recover_at_once_from_connections_the_database_dropped,
);

async fn project(store: &dyn Store) -> ProjectId {
    let p = Project {
        id: ProjectId::new(),
        name: "p".into(),
        created_at: 0,
        quotas: Default::default(),
    };
    let mut tx = store.write().await.unwrap();
    tx.put_project(&p).await.unwrap();
    tx.commit().await.unwrap();
    p.id
}

fn port(project: &ProjectId, ip: &str) -> Port {
    Port {
        id: PortId::new(),
        project_id: project.clone(),
        name: "p".into(),
        network_id: "n".into(),
        admin_state_up: true,
        mac_address: "fa:16:3e:00:00:01".into(),
        fixed_ips: vec![FixedIp {
            subnet_id: "s".into(),
            ip_address: ip.parse().unwrap(),
        }],
        device_id: String::new(),
        device_owner: String::new(),
        status: "DOWN".into(),
        security_groups: vec!["sg1".into()],
        host_id: String::new(),
        binding_profile: BindingProfile::default(),
        created_at: Timestamp(1),
        updated_at: Timestamp(1),
    }
}

fn filter(project: &ProjectId, name: &str) -> Filter {
    Filter {
        id: FilterId::new(),
        project_id: project.clone(),
        name: name.into(),
        description: String::new(),
        created_at: Timestamp(1),
        updated_at: Timestamp(1),
    }
}

fn rule(f: &Filter, direction: Direction, priority: i64) -> FilterRule {
    FilterRule {
        id: RuleId::new(),
        project_id: f.project_id.clone(),
        filter_id: f.id,
        direction,
        priority: RulePriority::new(priority).unwrap(),
        action: RuleAction::Accept,
        matches: RuleMatch {
            ethertype: Ethertype::IPv4,
            protocol: Protocol::Tcp,
            source_cidr: Some("10.0.0.0/8".parse().unwrap()),
            destination_cidr: None,
            source_port_range: Some(PortRange::new(80, 81).unwrap()),
            destination_port_range: None,
        },
        protocol_spelling: "TCP".into(),
        description: String::new(),
        created_at: Timestamp(2),
        updated_at: Timestamp(2),
    }
}

fn session(f: &Filter, target: &Port, sources: Vec<PortId>, priority: i64) -> Session {
    Session {
        id: SessionId::new(),
        project_id: f.project_id.clone(),
        name: format!("s{priority}"),
        description: String::new(),
        filter_id: f.id,
        sources: SessionSources::Eni(sources),
        target: SessionTarget::Port(target.id),
        vni: Vni::new(7).unwrap(),
        packet_length: PacketLength::new(96).unwrap(),
        priority: SessionPriority::new(priority).unwrap(),
        enabled: priority % 2 == 0,
        created_at: Timestamp(3),
        updated_at: Timestamp(3),
    }
}

async fn every_write_transaction_bumps_the_revision_once_and_wakes_watchers(b: &Backend) {
    let store = b.open().await;
    let mut feed = store.revisions();
    let start = *feed.borrow_and_update();
    let p = project(store.as_ref()).await;
    assert_eq!(*feed.borrow_and_update(), start + 1);
    // Several writes in one transaction: one revision.
    let mut tx = store.write().await.unwrap();
    tx.put_filter(&filter(&p, "a")).await.unwrap();
    tx.put_filter(&filter(&p, "b")).await.unwrap();
    assert_eq!(tx.commit().await.unwrap(), start + 2);
    assert!(feed.has_changed().unwrap());
    assert_eq!(*feed.borrow_and_update(), start + 2);
    // A transaction that only reads, or is dropped, changes nothing.
    let mut tx = store.write().await.unwrap();
    tx.get_filter(&p, FilterId::new()).await.unwrap();
    assert_eq!(tx.commit().await.unwrap(), start + 2);
    let mut tx = store.write().await.unwrap();
    tx.put_filter(&filter(&p, "rolled back")).await.unwrap();
    drop(tx);
    assert!(!feed.has_changed().unwrap());
    let page = store
        .read()
        .await
        .unwrap()
        .list_filters(&p, &ListQuery::all(10))
        .await
        .unwrap();
    assert_eq!(
        page.items
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    // A waiting watcher wakes on the next commit.
    let waiter = tokio::spawn(async move {
        feed.changed().await.unwrap();
        *feed.borrow()
    });
    let mut tx = store.write().await.unwrap();
    tx.put_filter(&filter(&p, "c")).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(waiter.await.unwrap(), start + 3);
}

async fn sessions_keep_source_order_and_constraints_back_the_rules(b: &Backend) {
    let store = b.open().await;
    let p = project(store.as_ref()).await;
    let f = filter(&p, "f");
    let target = port(&p, "10.0.0.9");
    let sources: Vec<Port> = (1..=4).map(|i| port(&p, &format!("10.0.0.{i}"))).collect();
    let mut tx = store.write().await.unwrap();
    tx.put_filter(&f).await.unwrap();
    tx.put_port(&target).await.unwrap();
    for s in &sources {
        tx.put_port(s).await.unwrap();
    }
    let mut s1 = session(
        &f,
        &target,
        vec![sources[2].id, sources[0].id, sources[3].id],
        1,
    );
    tx.put_session(&s1).await.unwrap();
    tx.put_rule(&rule(&f, Direction::Ingress, 5)).await.unwrap();
    tx.commit().await.unwrap();

    let mut r = store.read().await.unwrap();
    assert_eq!(r.get_session(&p, s1.id).await.unwrap().unwrap(), s1);
    assert_eq!(
        r.sessions_with_source(sources[0].id).await.unwrap(),
        vec![s1.id]
    );
    assert_eq!(
        r.sessions_with_target(target.id).await.unwrap(),
        vec![s1.id]
    );
    assert_eq!(
        r.session_with_priority(&p, s1.priority).await.unwrap(),
        Some(s1.id)
    );
    drop(r);

    // Replacing keeps the creation order of the session and the new order of its sources.
    s1.sources = SessionSources::Eni(vec![sources[1].id, sources[2].id]);
    s1.name = "renamed".into();
    let mut tx = store.write().await.unwrap();
    tx.put_session(&s1).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store
            .read()
            .await
            .unwrap()
            .get_session(&p, s1.id)
            .await
            .unwrap()
            .unwrap(),
        s1
    );

    // Unique priority per project, unique rule priority per filter and direction.
    let mut tx = store.write().await.unwrap();
    let clash = session(&f, &target, vec![], 1);
    assert!(matches!(
        tx.put_session(&clash).await,
        Err(StoreError::Unique("sessions_priority"))
    ));
    drop(tx);
    let mut tx = store.write().await.unwrap();
    assert!(matches!(
        tx.put_rule(&rule(&f, Direction::Ingress, 5)).await,
        Err(StoreError::Unique("rules_priority"))
    ));
    drop(tx);
    let mut tx = store.write().await.unwrap();
    tx.put_rule(&rule(&f, Direction::Egress, 5)).await.unwrap();
    tx.commit().await.unwrap();

    // A filter in use cannot be deleted; a session's unknown filter is refused.
    let mut tx = store.write().await.unwrap();
    assert!(matches!(
        tx.delete_filter(&p, f.id).await,
        Err(StoreError::ForeignKey)
    ));
    drop(tx);
    let mut tx = store.write().await.unwrap();
    let orphan = session(&filter(&p, "never stored"), &target, vec![], 9);
    assert!(matches!(
        tx.put_session(&orphan).await,
        Err(StoreError::ForeignKey)
    ));
    drop(tx);

    // Deleting the session frees its sources; deleting the filter takes its rules.
    let mut tx = store.write().await.unwrap();
    assert!(tx.delete_session(&p, s1.id).await.unwrap());
    assert!(tx.delete_filter(&p, f.id).await.unwrap());
    tx.commit().await.unwrap();
    let mut r = store.read().await.unwrap();
    assert!(r
        .sessions_with_source(sources[1].id)
        .await
        .unwrap()
        .is_empty());
    assert!(r.rules_of_filters(&[f.id]).await.unwrap().is_empty());
}

async fn lists_filter_page_and_stay_within_the_project(b: &Backend) {
    let store = b.open().await;
    let p = project(store.as_ref()).await;
    let other = project(store.as_ref()).await;
    let f = filter(&p, "f");
    let target = port(&p, "10.0.0.9");
    let src = port(&p, "10.0.0.1");
    let mut tx = store.write().await.unwrap();
    tx.put_filter(&f).await.unwrap();
    tx.put_filter(&filter(&other, "theirs")).await.unwrap();
    tx.put_port(&target).await.unwrap();
    tx.put_port(&src).await.unwrap();
    let mut ids = Vec::new();
    for priority in 1..=5 {
        let sources = if priority == 3 { vec![src.id] } else { vec![] };
        let s = session(&f, &target, sources, priority);
        ids.push(s.id);
        tx.put_session(&s).await.unwrap();
    }
    tx.commit().await.unwrap();
    let mut r = store.read().await.unwrap();
    // Pages in creation order, `more` until the end, markers resume after an id.
    let first = r.list_sessions(&p, &ListQuery::all(2)).await.unwrap();
    assert_eq!(
        first.items.iter().map(|s| s.id).collect::<Vec<_>>(),
        ids[..2]
    );
    assert!(first.more);
    let q = ListQuery {
        marker: Some(ids[3].to_string()),
        ..ListQuery::all(2)
    };
    let last = r.list_sessions(&p, &q).await.unwrap();
    assert_eq!(
        last.items.iter().map(|s| s.id).collect::<Vec<_>>(),
        ids[4..]
    );
    assert!(!last.more);
    let q: ListQuery<SessionField> = ListQuery {
        marker: Some(SessionId::new().to_string()),
        ..ListQuery::all(2)
    };
    assert!(matches!(
        r.list_sessions(&p, &q).await,
        Err(StoreError::UnknownMarker(_))
    ));
    // OR within a field, AND across fields, and the source condition.
    let cond = |field, values| Condition { field, values };
    let q = ListQuery {
        conditions: vec![
            cond(
                SessionField::Priority,
                vec![Value::Int(1), Value::Int(2), Value::Int(4)],
            ),
            cond(SessionField::Enabled, vec![Value::Bool(true)]),
        ],
        ..ListQuery::all(100)
    };
    let got = r.list_sessions(&p, &q).await.unwrap();
    assert_eq!(
        got.items
            .iter()
            .map(|s| s.priority.get())
            .collect::<Vec<_>>(),
        [2, 4]
    );
    let q = ListQuery {
        conditions: vec![cond(
            SessionField::SourceId,
            vec![Value::Text(src.id.to_string())],
        )],
        ..ListQuery::all(100)
    };
    assert_eq!(
        r.list_sessions(&p, &q)
            .await
            .unwrap()
            .items
            .iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        [ids[2]]
    );
    // Ports by fixed IP and security group.
    let q = ListQuery {
        conditions: vec![
            Condition {
                field: PortField::FixedIpAddress,
                values: vec![Value::Text("10.0.0.1".into())],
            },
            Condition {
                field: PortField::SecurityGroup,
                values: vec![Value::Text("sg1".into())],
            },
        ],
        ..ListQuery::all(100)
    };
    assert_eq!(
        r.list_ports(&p, &q)
            .await
            .unwrap()
            .items
            .iter()
            .map(|x| x.id)
            .collect::<Vec<_>>(),
        [src.id]
    );
    // Another project's resources are invisible.
    assert_eq!(
        r.list_filters(&other, &ListQuery::all(10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(r.get_filter(&other, f.id).await.unwrap().is_none());
    assert!(r.get_session(&other, ids[0]).await.unwrap().is_none());
}

async fn data_survive_reopening(b: &Backend) {
    let store = b.open().await;
    let p = project(store.as_ref()).await;
    let f = filter(&p, "kept");
    let mut tx = store.write().await.unwrap();
    tx.put_filter(&f).await.unwrap();
    let rev = tx.commit().await.unwrap();
    store.close().await;
    drop(store);
    let again = b.open().await;
    assert_eq!(
        *again.revisions().borrow(),
        rev,
        "the revision continues where it was"
    );
    assert_eq!(
        again
            .read()
            .await
            .unwrap()
            .get_filter(&p, f.id)
            .await
            .unwrap(),
        Some(f)
    );
}

/// A nonce is not a change of the database: using one must not make the other connections to
/// the database file drop their page caches (in WAL mode SQLite drops a connection's whole
/// cache at its next read once another connection has committed to the file; `data_version`
/// is how a connection sees that).
#[tokio::test]
async fn sqlite_nonces_are_written_beside_the_database_not_into_it() {
    use sqlx::Connection;
    let b = Backend::sqlite();
    let store = b.open().await;
    let mut watcher = sqlx::SqliteConnection::connect(b.url()).await.unwrap();
    let version = || sqlx::query_scalar::<_, i64>("PRAGMA data_version");
    let before = version().fetch_one(&mut watcher).await.unwrap();
    let uses: Vec<NonceUse> = (0..20)
        .map(|i| NonceUse {
            access_key: "AK".into(),
            nonce: format!("n{i}"),
            expires_at: 100,
        })
        .collect();
    assert!(store
        .use_nonces(&uses, 10)
        .await
        .unwrap()
        .iter()
        .all(|f| *f));
    assert_eq!(store.forget_nonces(200).await.unwrap(), 20);
    assert_eq!(version().fetch_one(&mut watcher).await.unwrap(), before);
    // The control: a write to the database is seen.
    project(store.as_ref()).await;
    assert_ne!(version().fetch_one(&mut watcher).await.unwrap(), before);
    let path = b.url().strip_prefix("sqlite:").unwrap();
    assert!(std::path::Path::new(&tmirror_store::sqlite::nonce_file(path)).exists());
}

/// A database from before the nonces' own file: its nonces still count once moved, expired
/// ones are left behind, and its table is gone.
#[tokio::test]
async fn sqlite_nonces_stored_in_the_database_move_to_their_file() {
    let b = Backend::sqlite();
    let now = Timestamp::now().0;
    let (valid, expired) = (now + 900, now - 10);
    let rows: Vec<String> = (0..600)
        .map(|i| {
            format!(
                "('AK', 'old{i}', {})",
                if i < 500 { valid } else { expired }
            )
        })
        .collect();
    b.at_schema_before(
        "_nonces_file",
        &[format!(
            "INSERT INTO aliyun_nonces (access_key, nonce, expires_at) VALUES {}",
            rows.join(", ")
        )],
    )
    .await;
    let store = b.open().await;
    let again: Vec<NonceUse> = [0, 499, 500, 599]
        .iter()
        .map(|i| NonceUse {
            access_key: "AK".into(),
            nonce: format!("old{i}"),
            expires_at: now + 900,
        })
        .collect();
    assert_eq!(
        store.use_nonces(&again, now).await.unwrap(),
        [false, false, true, true]
    );
    assert_eq!(
        b.number("SELECT count(*) FROM sqlite_master WHERE name = 'aliyun_nonces'")
            .await,
        0
    );
    // And a store opened on it again finds them (nothing is moved twice or lost).
    store.close().await;
    let store = b.open().await;
    assert_eq!(
        store.use_nonces(&again, now).await.unwrap(),
        [false, false, false, false]
    );
}

#[tokio::test]
async fn bad_urls_say_what_is_supported() {
    let e = match open("mysql://x", sealer()).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("mysql is not a back-end"),
    };
    assert!(e.contains("sqlite:"), "{e}");
    let e = match open("sqlite:/tmp/x.db?journal=off", sealer()).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("unknown option accepted"),
    };
    assert!(e.contains("synchronous"), "{e}");
    let e = match open("sqlite::memory:", sealer()).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("an in-memory database accepted"),
    };
    assert!(e.contains("in-memory") && e.contains("sqlite:PATH"), "{e}");
    let e = match open("sqlite:", sealer()).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a URL without a file accepted"),
    };
    assert!(e.contains("no database file"), "{e}");
}

/// Runs `f` in a write transaction of `store`, again while it loses races (as the service
/// layer does).
async fn transact<T>(
    store: &dyn Store,
    mut f: impl for<'a> FnMut(
        &'a mut dyn WriteTx,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = StoreResult<T>> + Send + 'a>,
    >,
) -> T {
    for _ in 0..20 {
        let mut tx = store.write().await.unwrap();
        match f(tx.as_mut()).await {
            Ok(v) => match tx.commit().await {
                Ok(_) => return v,
                Err(StoreError::Retry) => continue,
                Err(e) => panic!("commit failed: {e}"),
            },
            Err(StoreError::Retry) => continue,
            Err(e) => panic!("transaction failed: {e}"),
        }
    }
    panic!("the transaction lost 20 races in a row")
}

async fn a_waiting_writer_sees_the_commit_before_it(b: &Backend) {
    let store = b.open().await;
    let p = project(store.as_ref()).await;
    let f = filter(&p, "first");
    let mut first = store.write().await.unwrap();
    first.put_filter(&f).await.unwrap();
    let (store2, p2, id) = (store.clone(), p.clone(), f.id);
    let second = tokio::spawn(async move {
        let mut tx = store2.write().await.unwrap();
        let seen = tx.get_filter(&p2, id).await.unwrap();
        tx.put_filter(&filter(&p2, "second")).await.unwrap();
        (seen, tx.commit().await.unwrap())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "a second writer waits while the first is open"
    );
    let r1 = first.commit().await.unwrap();
    let (seen, r2) = second.await.unwrap();
    assert_eq!(
        seen,
        Some(f),
        "the second writer's reads include the first one's commit"
    );
    assert_eq!(r2, r1 + 1);
}

/// Each writer counts the filters and adds one named after the count: serialised writers
/// give every count exactly once.
async fn serialised_writers(stores: Vec<Arc<dyn Store>>, p: ProjectId) {
    let writers = 16;
    let mut tasks = Vec::new();
    for i in 0..writers {
        let (store, p) = (stores[i % stores.len()].clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            transact(store.as_ref(), |tx| {
                let p = p.clone();
                Box::pin(async move {
                    let n = tx
                        .list_filters(&p, &ListQuery::all(1000))
                        .await?
                        .items
                        .len();
                    tx.put_filter(&filter(&p, &format!("n{n}"))).await?;
                    Ok(())
                })
            })
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut names: Vec<String> = stores[0]
        .read()
        .await
        .unwrap()
        .list_filters(&p, &ListQuery::all(1000))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|f| f.name)
        .collect();
    names.sort_by_key(|n| n[1..].parse::<u32>().unwrap());
    let expected: Vec<String> = (0..writers).map(|i| format!("n{i}")).collect();
    assert_eq!(names, expected);
}

async fn concurrent_writers_are_serialised(b: &Backend) {
    let store = b.open().await;
    let p = project(store.as_ref()).await;
    serialised_writers(vec![store], p).await;
}

async fn nonces_are_single_use_until_they_expire(b: &Backend) {
    let s = b.open().await;
    let nonce = |key: &str, nonce: &str, expires_at| NonceUse {
        access_key: key.into(),
        nonce: nonce.into(),
        expires_at,
    };
    let revision = *s.revisions().borrow();
    assert_eq!(
        s.use_nonces(&[nonce("AK", "n1", 100)], 10).await.unwrap(),
        [true]
    );
    // Used already; the same nonce of another key is not; twice in one batch: the first.
    let batch = [
        nonce("AK", "n1", 100),
        nonce("AK2", "n1", 100),
        nonce("AK", "n2", 100),
        nonce("AK", "n2", 100),
    ];
    assert_eq!(
        s.use_nonces(&batch, 20).await.unwrap(),
        [false, true, true, false]
    );
    assert_eq!(s.use_nonces(&[], 20).await.unwrap(), Vec::<bool>::new());
    // An expired use no longer counts, forgotten or not (its timestamp would be stale), and
    // the new use holds until its own expiry.
    assert_eq!(
        s.use_nonces(&[nonce("AK", "n1", 300)], 200).await.unwrap(),
        [true]
    );
    assert_eq!(
        s.use_nonces(&[nonce("AK", "n1", 300)], 210).await.unwrap(),
        [false]
    );
    // Forgetting removes the expired uses only: AK2/n1 and AK/n2 (100), not AK/n1 (300).
    assert_eq!(s.forget_nonces(200).await.unwrap(), 2);
    assert_eq!(s.forget_nonces(200).await.unwrap(), 0);
    assert_eq!(
        s.use_nonces(&[nonce("AK", "n1", 400)], 220).await.unwrap(),
        [false]
    );
    // More uses than one statement takes, a nonce repeated across the boundary: still only
    // its first use is fresh, and a second pass finds every one used.
    let many: Vec<NonceUse> = (0..300)
        .map(|i| nonce("AK3", &format!("m{i:03}"), 500))
        .chain([nonce("AK3", "m005", 500), nonce("AK3", "m299", 500)])
        .collect();
    let mut want = vec![true; 300];
    want.extend([false, false]);
    assert_eq!(s.use_nonces(&many, 230).await.unwrap(), want);
    assert!(s
        .use_nonces(&many[..300], 240)
        .await
        .unwrap()
        .iter()
        .all(|fresh| !fresh));
    // Bookkeeping, not a change: no revision taken.
    assert_eq!(*s.revisions().borrow(), revision);
}

async fn tags_groups_and_tokens_live_and_die_with_their_resource(b: &Backend) {
    let s = b.open().await;
    let project = project(s.as_ref()).await;
    let f = filter(&project, "f");
    let id = f.id.to_string();
    let tag = |key: &str, value: &str| AliyunTag {
        resource_type: "filter".into(),
        resource_id: id.clone(),
        key: key.into(),
        value: value.into(),
    };
    let mut tx = s.write().await.unwrap();
    tx.put_filter(&f).await.unwrap();
    tx.aliyun_set_tag(&project, &tag("k2", "v")).await.unwrap();
    tx.aliyun_set_tag(&project, &tag("k1", "v")).await.unwrap();
    tx.aliyun_set_tag(&project, &tag("k2", "changed"))
        .await
        .unwrap();
    tx.aliyun_set_tag(&project, &tag("k3", "v")).await.unwrap();
    tx.aliyun_set_resource_group(&project, "filter", &id, "rg-1")
        .await
        .unwrap();
    assert!(tx.aliyun_open_service(&project, 1).await.unwrap());
    assert!(!tx.aliyun_open_service(&project, 2).await.unwrap());
    let token = AliyunToken {
        fingerprint: "fp".into(),
        response: "{}".into(),
    };
    tx.aliyun_put_token(&project, "tok", &token, 100, 0)
        .await
        .unwrap();
    tx.aliyun_put_token(&project, "old", &token, 10, 0)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut r = s.read().await.unwrap();
    // In the order first set; an overwrite keeps the place.
    assert_eq!(
        r.aliyun_tags(&project, "filter").await.unwrap(),
        vec![tag("k2", "changed"), tag("k1", "v"), tag("k3", "v")]
    );
    assert_eq!(
        r.aliyun_resource_groups(&project, "filter").await.unwrap(),
        vec![(id.clone(), "rg-1".to_string())]
    );
    assert!(r.aliyun_service_opened(&project).await.unwrap());
    assert_eq!(
        r.aliyun_token(&project, "tok").await.unwrap(),
        Some(token.clone())
    );
    assert_eq!(
        r.aliyun_token(&ProjectId::new(), "tok").await.unwrap(),
        None
    );
    drop(r);

    let mut tx = s.write().await.unwrap();
    tx.aliyun_remove_tags(&project, &id, Some(&["k1".to_string(), "k3".to_string()]))
        .await
        .unwrap();
    // Records older than `forget_before` go when a new one is written.
    tx.aliyun_put_token(&project, "new", &token, 200, 50)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut r = s.read().await.unwrap();
    assert_eq!(
        r.aliyun_tags(&project, "filter").await.unwrap(),
        vec![tag("k2", "changed")]
    );
    assert_eq!(r.aliyun_token(&project, "old").await.unwrap(), None);
    assert!(r.aliyun_token(&project, "tok").await.unwrap().is_some());
    drop(r);

    // Deleting the filter takes its tags and group, in the same transaction.
    let mut tx = s.write().await.unwrap();
    assert!(tx.delete_filter(&project, f.id).await.unwrap());
    tx.commit().await.unwrap();
    let mut r = s.read().await.unwrap();
    assert!(r.aliyun_tags(&project, "filter").await.unwrap().is_empty());
    assert!(r
        .aliyun_resource_groups(&project, "filter")
        .await
        .unwrap()
        .is_empty());
}

async fn revisions_and_tombstones_of_the_asynchronous_states(b: &Backend) {
    let s = b.open().await;
    let p = project(s.as_ref()).await;
    let f = filter(&p, "f");
    let target = port(&p, "10.0.0.9");
    let mut sess = session(&f, &target, vec![], 1);
    let mut tx = s.write().await.unwrap();
    tx.put_filter(&f).await.unwrap();
    tx.put_port(&target).await.unwrap();
    tx.put_session(&sess).await.unwrap();
    let created = tx.commit().await.unwrap();
    sess.name = "changed".into();
    let mut tx = s.write().await.unwrap();
    tx.put_session(&sess).await.unwrap();
    let changed = tx.commit().await.unwrap();
    assert!(changed > created);
    let ids = vec![sess.id.to_string(), SessionId::new().to_string()];
    let mut r = s.read().await.unwrap();
    let revs = r.aliyun_revisions("session", &ids).await.unwrap();
    assert_eq!(revs.len(), 1);
    assert_eq!(revs[&ids[0]], (changed, created));
    assert_eq!(
        r.aliyun_revisions("filter", &[f.id.to_string()])
            .await
            .unwrap()[&f.id.to_string()],
        (created, created)
    );
    assert!(r.aliyun_revisions("port", &ids).await.is_err());
    drop(r);

    // The Alibaba list's page carries the same revisions, the tags in the order they were
    // set, and the resource group; none of either for an untagged session in the default group.
    let other = session(&f, &target, vec![], 2);
    let tag = |key: &str, value: &str| AliyunTag {
        resource_type: "session".into(),
        resource_id: sess.id.to_string(),
        key: key.into(),
        value: value.into(),
    };
    let mut tx = s.write().await.unwrap();
    tx.put_session(&other).await.unwrap();
    tx.aliyun_set_tag(&p, &tag("z", "1")).await.unwrap();
    tx.aliyun_set_tag(&p, &tag("a", "2")).await.unwrap();
    tx.aliyun_set_resource_group(&p, "session", &sess.id.to_string(), "rg-1")
        .await
        .unwrap();
    let tagged = tx.commit().await.unwrap();
    let q = ListQuery {
        conditions: vec![],
        marker: None,
        limit: 10,
    };
    let mut r = s.read().await.unwrap();
    let page = r.aliyun_session_page(&p, &q).await.unwrap();
    assert!(!page.more);
    let rows: Vec<_> = page
        .items
        .iter()
        .map(|row| {
            (
                row.session.id,
                row.revision,
                row.created_revision,
                row.tags.clone(),
                row.resource_group.clone(),
            )
        })
        .collect();
    let pairs = vec![("z".to_string(), "1".to_string()), ("a".into(), "2".into())];
    assert_eq!(
        rows,
        [
            (sess.id, changed, created, pairs, Some("rg-1".to_string())),
            (other.id, tagged, tagged, vec![], None),
        ]
    );
    assert_eq!(
        page.items
            .iter()
            .map(|row| &row.session)
            .collect::<Vec<_>>(),
        [&sess, &other]
    );
    drop(r);

    let mut tx = s.write().await.unwrap();
    assert!(tx.delete_session(&p, sess.id).await.unwrap());
    let t = AliyunTombstone {
        id: sess.id.to_string(),
        kind: "session".into(),
        revision: 0,
        view: serde_json::json!({"TrafficMirrorSessionName": "changed"}),
        hosts: vec!["hv1".into(), "hv2".into()],
    };
    tx.aliyun_put_tombstone(&p, &t).await.unwrap();
    let deleted = tx.commit().await.unwrap();
    let mut r = s.read().await.unwrap();
    let stones = r.aliyun_tombstones(&p, "session").await.unwrap();
    assert_eq!(
        stones,
        vec![AliyunTombstone {
            revision: deleted,
            ..t
        }]
    );
    drop(r);
    s.agent_data()
        .await
        .unwrap()
        .aliyun_forget_tombstones(&[sess.id.to_string()])
        .await
        .unwrap();
    let mut r = s.read().await.unwrap();
    assert!(r.aliyun_tombstones(&p, "session").await.unwrap().is_empty());
}

async fn agent_bookkeeping_does_not_bump_the_revision(b: &Backend) {
    let s = b.open().await;
    let mut feed = s.revisions();
    let start = *feed.borrow_and_update();
    let mut a = s.agent_data().await.unwrap();
    let mut rec = AgentRecord {
        host_id: "hv2".into(),
        registered_at: 10,
        last_seen: 10,
        applied_generation: 3,
        interfaces: vec!["eth0".into(), "tap1".into()],
        report: serde_json::json!({"sessions": {"x": 1}}),
    };
    a.put_agent(&rec).await.unwrap();
    // A first record of an agent that has one changes nothing.
    let mut blank = rec.clone();
    blank.interfaces.clear();
    blank.applied_generation = 0;
    a.add_agent(&blank).await.unwrap();
    assert_eq!(a.agent("hv2").await.unwrap().as_ref(), Some(&rec));
    let mut other = rec.clone();
    other.host_id = "hv1".into();
    a.put_agent(&other).await.unwrap();
    rec.registered_at = 99; // ignored on update
    rec.last_seen = 20;
    rec.applied_generation = 4;
    a.put_agent(&rec).await.unwrap();
    // A record read before that write, written by another server after it: what the agent
    // was seen to apply, and when, does not go back.
    let mut stale = rec.clone();
    stale.last_seen = 15;
    stale.applied_generation = 3;
    a.put_agent(&stale).await.unwrap();
    a.set_agent_last_seen("hv1", 5).await.unwrap();
    let got = a.agents().await.unwrap();
    assert_eq!(
        got.iter().map(|r| r.host_id.as_str()).collect::<Vec<_>>(),
        ["hv1", "hv2"]
    );
    assert_eq!(got[0].last_seen, 5);
    assert_eq!(
        a.agent("hv2").await.unwrap(),
        Some(AgentRecord {
            registered_at: 10,
            ..rec
        })
    );
    assert_eq!(a.agent("nobody").await.unwrap(), None);
    assert_eq!(a.current_revision().await.unwrap(), start);
    assert!(!feed.has_changed().unwrap());
}

async fn ports_by_host_and_list_conditions_of_every_kind(b: &Backend) {
    let s = b.open().await;
    let p = project(s.as_ref()).await;
    let mut bound = port(&p, "10.0.1.1");
    bound.host_id = "hv1".into();
    bound.mac_address = "FA:16:3E:AA:BB:CC".into();
    bound.fixed_ips[0].subnet_id = "subnet-b".into();
    let free = port(&p, "10.0.1.2");
    let f = filter(&p, "f");
    let mut r_in = rule(&f, Direction::Ingress, 2);
    r_in.matches.protocol = Protocol::Udp;
    let r_in1 = rule(&f, Direction::Ingress, 1);
    let r_out = rule(&f, Direction::Egress, 1);
    let mut tx = s.write().await.unwrap();
    tx.put_port(&bound).await.unwrap();
    tx.put_port(&free).await.unwrap();
    tx.put_filter(&f).await.unwrap();
    for r in [&r_in, &r_in1, &r_out] {
        tx.put_rule(r).await.unwrap();
    }
    tx.commit().await.unwrap();

    let mut a = s.agent_data().await.unwrap();
    assert_eq!(a.ports_on_host("hv1").await.unwrap(), vec![bound.clone()]);
    assert_eq!(a.unbound_ports().await.unwrap(), vec![free.clone()]);
    drop(a);

    let mut r = s.read().await.unwrap();
    let ports = |conds: Vec<Condition<PortField>>| ListQuery {
        conditions: conds,
        ..ListQuery::all(100)
    };
    let ids = |page: Page<Port>| page.items.into_iter().map(|x| x.id).collect::<Vec<_>>();
    fn c<F>(field: F, values: Vec<Value>) -> Condition<F> {
        Condition { field, values }
    }
    // MAC addresses compare case-insensitively; booleans, subnets, hosts exactly.
    assert_eq!(
        ids(r
            .list_ports(
                &p,
                &ports(vec![c(
                    PortField::MacAddress,
                    vec![Value::Text("fa:16:3e:aa:bb:cc".into())]
                )])
            )
            .await
            .unwrap()),
        [bound.id]
    );
    assert_eq!(
        ids(r
            .list_ports(
                &p,
                &ports(vec![c(
                    PortField::FixedIpSubnet,
                    vec![Value::Text("subnet-b".into())]
                )])
            )
            .await
            .unwrap()),
        [bound.id]
    );
    assert_eq!(
        ids(r
            .list_ports(
                &p,
                &ports(vec![c(PortField::AdminStateUp, vec![Value::Bool(true)])])
            )
            .await
            .unwrap()),
        [bound.id, free.id]
    );
    assert!(r
        .list_ports(
            &p,
            &ports(vec![c(PortField::AdminStateUp, vec![Value::Bool(false)])])
        )
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        ids(r
            .list_ports(
                &p,
                &ports(vec![c(PortField::HostId, vec![Value::Text("".into())])])
            )
            .await
            .unwrap()),
        [free.id]
    );
    // Rules: protocol case-insensitively, priority as a number, marker within the list.
    let rule_ids =
        |page: Page<FilterRule>| page.items.into_iter().map(|x| x.id).collect::<Vec<_>>();
    let q = ListQuery {
        conditions: vec![c(RuleField::Protocol, vec![Value::Text("TCP".into())])],
        ..ListQuery::all(100)
    };
    assert_eq!(
        rule_ids(r.list_rules(&p, &q).await.unwrap()),
        [r_in1.id, r_out.id]
    );
    let q = ListQuery {
        conditions: vec![
            c(RuleField::Priority, vec![Value::Int(1)]),
            c(RuleField::Direction, vec![Value::Text("egress".into())]),
        ],
        ..ListQuery::all(100)
    };
    assert_eq!(rule_ids(r.list_rules(&p, &q).await.unwrap()), [r_out.id]);
    let q = ListQuery {
        marker: Some(r_in.id.to_string()),
        ..ListQuery::all(1)
    };
    let page = r.list_rules(&p, &q).await.unwrap();
    assert_eq!(rule_ids(page.clone()), [r_in1.id]);
    assert!(page.more);
    // The rules of a filter, by direction then priority; lookups by priority; counts.
    let all = r.rules_of_filters(&[f.id, FilterId::new()]).await.unwrap();
    let mut expected = vec![
        (r_in1.direction, 1),
        (r_in.direction, 2),
        (r_out.direction, 1),
    ];
    expected.sort_by_key(|(d, p)| (d.as_str().to_string(), *p));
    assert_eq!(
        all.iter()
            .map(|r| (r.direction, r.priority.get()))
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(all.iter().find(|x| x.id == r_in.id), Some(&r_in));
    assert_eq!(
        r.rule_with_priority(f.id, Direction::Ingress, RulePriority::new(2).unwrap())
            .await
            .unwrap(),
        Some(r_in.id)
    );
    assert_eq!(
        r.rule_with_priority(f.id, Direction::Egress, RulePriority::new(2).unwrap())
            .await
            .unwrap(),
        None
    );
    assert_eq!(r.count_rules(f.id, Direction::Ingress).await.unwrap(), 2);
    assert!(r.rules_of_filters(&[]).await.unwrap().is_empty());
}

/// The per-project quotas count a project's resources of one kind, in the write transaction
/// that is about to add one (so its own writes count) and outside one.
async fn counts_are_per_project_and_kind_and_see_the_transaction(b: &Backend) {
    let store = b.open().await;
    let (p, other) = (project(&*store).await, project(&*store).await);
    let kinds = [
        ResourceKind::Session,
        ResourceKind::Filter,
        ResourceKind::Rule,
        ResourceKind::Port,
    ];
    let mut tx = store.write().await.unwrap();
    for kind in kinds {
        assert_eq!(tx.count_in_project(&p, kind).await.unwrap(), 0, "{kind}");
    }
    let f = filter(&p, "f");
    let (src, dst) = (port(&p, "10.0.0.1"), port(&p, "10.0.0.2"));
    tx.put_filter(&f).await.unwrap();
    tx.put_rule(&rule(&f, Direction::Ingress, 1)).await.unwrap();
    tx.put_rule(&rule(&f, Direction::Egress, 1)).await.unwrap();
    tx.put_port(&src).await.unwrap();
    tx.put_port(&dst).await.unwrap();
    tx.put_port(&port(&other, "10.0.0.3")).await.unwrap();
    let s = session(&f, &dst, vec![src.id], 1);
    tx.put_session(&s).await.unwrap();
    // Uncommitted writes of this transaction count.
    assert_eq!(
        tx.count_in_project(&p, ResourceKind::Port).await.unwrap(),
        2
    );
    tx.commit().await.unwrap();

    let mut r = store.read().await.unwrap();
    let counts = |n: [u32; 4]| kinds.into_iter().zip(n).collect::<Vec<_>>();
    let mut got = Vec::new();
    for kind in kinds {
        got.push((kind, r.count_in_project(&p, kind).await.unwrap()));
    }
    assert_eq!(got, counts([1, 1, 2, 2]));
    let mut got = Vec::new();
    for kind in kinds {
        got.push((kind, r.count_in_project(&other, kind).await.unwrap()));
    }
    assert_eq!(got, counts([0, 0, 0, 1]));
    drop(r);

    let mut tx = store.write().await.unwrap();
    assert!(tx.delete_session(&p, s.id).await.unwrap());
    assert_eq!(
        tx.count_in_project(&p, ResourceKind::Session)
            .await
            .unwrap(),
        0
    );
    // Rolled back: the session is still there.
    drop(tx);
    let mut r = store.read().await.unwrap();
    assert_eq!(
        r.count_in_project(&p, ResourceKind::Session).await.unwrap(),
        1
    );
}

/// Every kind the store counts, with its table.
const COUNTED: [(ResourceKind, &str); 7] = [
    (ResourceKind::Session, "sessions"),
    (ResourceKind::Filter, "filters"),
    (ResourceKind::Rule, "rules"),
    (ResourceKind::Port, "ports"),
    (ResourceKind::LoadBalancer, "load_balancers"),
    (ResourceKind::Member, "load_balancer_members"),
    (ResourceKind::Eip, "eips"),
];

/// The store's count of each kind in `p` (its counters), checked against the rows counted
/// past the store; returned in the order of [`COUNTED`].
async fn exact_counts(b: &Backend, store: &dyn Store, p: &ProjectId) -> Vec<u32> {
    let mut r = store.read().await.unwrap();
    let mut got = Vec::new();
    for (kind, table) in COUNTED {
        let counted = r.count_in_project(p, kind).await.unwrap();
        let sql = format!(
            "SELECT count(*) FROM {table} WHERE project_id = '{}'",
            p.as_str()
        );
        assert_eq!(i64::from(counted), b.number(&sql).await, "{kind} of {p:?}");
        got.push(counted);
    }
    // Alibaba's TotalCount of an unconditioned list is the same counter.
    let sessions = r.count_sessions(p, &ListQuery::all(10)).await.unwrap();
    let filters = r.count_filters(p, &ListQuery::all(10)).await.unwrap();
    assert_eq!((sessions, filters), (u64::from(got[0]), u64::from(got[1])));
    got
}

/// The per-project counters (migration `project_counts`) move with every insert and delete
/// of a counted row, cascades included, not with a rewrite of an existing row, and not at
/// all with a transaction that fails or is dropped.
async fn project_counts_stay_exact_through_creates_deletes_cascades_and_refusals(b: &Backend) {
    let store = b.open().await;
    let s = store.as_ref();
    let (p, other) = (project(s).await, project(s).await);
    let f = filter(&p, "f");
    let (src, dst) = (port(&p, "10.0.0.1"), port(&p, "10.0.0.2"));
    let session_1 = session(&f, &dst, vec![src.id], 1);
    let mut lb = load_balancer(
        &p,
        vec![member("10.0.5.1", 80, 1), member("10.0.5.2", 80, 1)],
    );
    let e = eip(&p, "5_bgp", "198.51.100.1");
    let mut tx = store.write().await.unwrap();
    tx.put_eip_pool(&eip_pool("5_bgp", "198.51.100.0/24", "gw1"))
        .await
        .unwrap();
    tx.put_filter(&f).await.unwrap();
    tx.put_rule(&rule(&f, Direction::Ingress, 1)).await.unwrap();
    tx.put_rule(&rule(&f, Direction::Egress, 1)).await.unwrap();
    for x in [&src, &dst, &port(&other, "10.0.0.3")] {
        tx.put_port(x).await.unwrap();
    }
    tx.put_session(&session_1).await.unwrap();
    tx.put_load_balancer(&lb).await.unwrap();
    tx.put_eip(&e).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(exact_counts(b, s, &p).await, [1, 1, 2, 2, 1, 2, 1]);
    assert_eq!(exact_counts(b, s, &other).await, [0, 0, 0, 1, 0, 0, 0]);

    // Rewrites (upserts of existing rows) count nothing; a replaced member list counts anew.
    let mut tx = store.write().await.unwrap();
    tx.put_session(&session_1).await.unwrap();
    tx.put_port(&src).await.unwrap();
    tx.put_filter(&f).await.unwrap();
    lb.members.push(member("10.0.5.3", 80, 1));
    tx.put_load_balancer(&lb).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(exact_counts(b, s, &p).await, [1, 1, 2, 2, 1, 3, 1]);

    // A transaction refused half-way (an address held in the network) counts nothing, nor
    // does the create before the refusal in it; nor one dropped without a commit.
    let mut tx = store.write().await.unwrap();
    tx.put_filter(&filter(&p, "g")).await.unwrap();
    assert!(matches!(
        tx.put_port(&port(&p, "10.0.0.1")).await,
        Err(StoreError::Unique("port_address"))
    ));
    drop(tx);
    let mut tx = store.write().await.unwrap();
    tx.put_session(&session(&f, &dst, vec![src.id], 2))
        .await
        .unwrap();
    drop(tx);
    assert_eq!(exact_counts(b, s, &p).await, [1, 1, 2, 2, 1, 3, 1]);

    // Deletes count down, cascades included (a filter's rules, a load balancer's members).
    let mut tx = store.write().await.unwrap();
    assert!(tx.delete_session(&p, session_1.id).await.unwrap());
    assert!(tx.delete_filter(&p, f.id).await.unwrap());
    assert!(tx.delete_load_balancer(&p, lb.id).await.unwrap());
    assert!(tx.delete_eip(&p, e.id).await.unwrap());
    assert!(tx.delete_port(&p, src.id).await.unwrap());
    // Another project's id deletes nothing and counts nothing.
    assert!(!tx.delete_port(&other, dst.id).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(exact_counts(b, s, &p).await, [0, 0, 0, 1, 0, 0, 0]);
    assert_eq!(exact_counts(b, s, &other).await, [0, 0, 0, 1, 0, 0, 0]);

    // The project's deletion takes its counter rows; the other project's stay.
    let mut tx = store.write().await.unwrap();
    assert!(tx.delete_port(&p, dst.id).await.unwrap());
    assert!(tx.delete_project(&p).await.unwrap());
    tx.commit().await.unwrap();
    let rows = |id: &ProjectId| {
        format!(
            "SELECT count(*) FROM project_counts WHERE project_id = '{}'",
            id.as_str()
        )
    };
    assert_eq!(b.number(&rows(&p)).await, 0);
    assert!(b.number(&rows(&other)).await > 0);
    assert_eq!(exact_counts(b, s, &p).await, [0; 7]);
    assert_eq!(exact_counts(b, s, &other).await, [0, 0, 0, 1, 0, 0, 0]);
}

/// Rows an earlier release stored are counted by the migration that brings the counters.
async fn project_counts_of_rows_stored_before_them_are_backfilled(b: &Backend) {
    let (p, q, empty) = (ProjectId::new(), ProjectId::new(), ProjectId::new());
    let numbers = |n: u32| {
        format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})")
    };
    let statements = vec![
        format!(
            "INSERT INTO projects (id, created_at) VALUES ('{}', 0), ('{}', 0), ('{}', 0)",
            p.as_str(),
            q.as_str(),
            empty.as_str()
        ),
        format!(
            "{} INSERT INTO filters (id, project_id, name, description, created_at,
                updated_at, revision, created_revision)
             SELECT 'f' || i, CASE WHEN i <= 30 THEN '{}' ELSE '{}' END, '', '', 0, 0, 1, 1
             FROM n",
            numbers(50),
            p.as_str(),
            q.as_str()
        ),
        format!(
            "{} INSERT INTO ports (id, project_id, name, network_id, admin_state_up,
                mac_address, fixed_ips, device_id, device_owner, status, security_groups,
                host_id, binding_profile, created_at, updated_at, revision)
             SELECT 'port' || i, '{}', '', 'net', TRUE, 'm', '[]', '', '', 'DOWN', '[]', '',
                '{{}}', 0, 0, 1 FROM n",
            numbers(7),
            q.as_str()
        ),
    ];
    b.at_schema_before("_project_counts", &statements).await;
    let store = b.open().await;
    let s = store.as_ref();
    assert_eq!(exact_counts(b, s, &p).await, [0, 30, 0, 0, 0, 0, 0]);
    assert_eq!(exact_counts(b, s, &q).await, [0, 20, 0, 7, 0, 0, 0]);
    assert_eq!(exact_counts(b, s, &empty).await, [0; 7]);
    // And they follow from there.
    let mut tx = store.write().await.unwrap();
    tx.put_filter(&filter(&p, "new")).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(exact_counts(b, s, &p).await, [0, 31, 0, 0, 0, 0, 0]);
}

// ---- several servers on one database (PostgreSQL) ----

async fn servers_starting_together_migrate_once(b: &Backend) {
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = b.url().to_owned();
            tokio::spawn(async move { open(&url, sealer()).await })
        })
        .collect();
    let mut stores = Vec::new();
    for o in opens {
        stores.push(o.await.unwrap().expect("every server starts"));
    }
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(b.url())
        .await
        .unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count();
    assert_eq!(applied as usize, files, "each migration applied once");
    for s in &stores {
        assert_eq!(s.backend(), "postgres");
        assert_eq!(*s.revisions().borrow(), 0);
    }
}

async fn a_commit_on_one_server_wakes_the_watchers_of_another(b: &Backend) {
    let a = b.open().await;
    let other = b.open().await;
    let p = project(a.as_ref()).await;
    for round in 0..5 {
        // Caught up first (the project's commit may still be on its way), then waiting.
        let mut feed = other.revisions();
        let current = *a.revisions().borrow();
        tokio::time::timeout(Duration::from_secs(1), feed.wait_for(|r| *r >= current))
            .await
            .expect("caught up within a second")
            .unwrap();
        feed.borrow_and_update();
        let waiter = tokio::spawn(async move {
            let start = std::time::Instant::now();
            tokio::time::timeout(Duration::from_secs(1), feed.changed())
                .await
                .expect("woken within a second")
                .unwrap();
            let seen = *feed.borrow();
            (seen, start.elapsed())
        });
        let mut tx = a.write().await.unwrap();
        tx.put_filter(&filter(&p, &format!("f{round}")))
            .await
            .unwrap();
        let rev = tx.commit().await.unwrap();
        let (seen, after) = waiter.await.unwrap();
        assert_eq!(seen, rev);
        assert!(after < Duration::from_secs(1), "{after:?}");
    }
    // And the other way round: the feed carries the newest revision, from either server.
    let mut tx = other.write().await.unwrap();
    tx.put_filter(&filter(&p, "back")).await.unwrap();
    let rev = tx.commit().await.unwrap();
    let mut feed = a.revisions();
    tokio::time::timeout(Duration::from_secs(1), feed.wait_for(|r| *r >= rev))
        .await
        .expect("woken within a second")
        .unwrap();
}

/// The backends listening on the revision channel.
async fn listeners(conn: &mut sqlx::PgConnection) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()
         AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid() ORDER BY pid",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

async fn the_feed_catches_up_after_losing_its_connection(b: &Backend) {
    let a = b.open().await;
    let other = b.open().await;
    let p = project(a.as_ref()).await;
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(b.url())
        .await
        .unwrap();
    let before = listeners(&mut admin).await;
    assert_eq!(before.len(), 2, "one listener per store");
    // Cut both listeners off and commit at once, before they can subscribe again: the
    // notification reaches no one, and the re-read after re-subscribing must find it.
    let mut tx = a.write().await.unwrap();
    tx.put_filter(&filter(&p, "while disconnected"))
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid")
        .bind(&before)
        .execute(&mut admin)
        .await
        .unwrap();
    let rev = tx.commit().await.unwrap();
    let mut feed = other.revisions();
    tokio::time::timeout(Duration::from_secs(5), feed.wait_for(|r| *r >= rev))
        .await
        .expect("the feed caught up after re-subscribing")
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = listeners(&mut admin).await;
        if now.len() == 2 && now.iter().all(|pid| !before.contains(pid)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "listeners back: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Notifications flow again.
    let mut tx = a.write().await.unwrap();
    tx.put_filter(&filter(&p, "after")).await.unwrap();
    let rev = tx.commit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), feed.wait_for(|r| *r >= rev))
        .await
        .expect("woken within a second")
        .unwrap();
}

/// A database restart breaks every pooled connection; reads in steady use (never idle long
/// enough for the idle check) must not keep getting a broken one: after a failure the
/// connections are checked before they are handed out, and the broken ones replaced.
async fn reads_recover_at_once_from_connections_the_database_dropped(b: &Backend) {
    let store = b.open().await;
    let p = project(store.as_ref()).await;
    let read = || async {
        let mut r = store.read().await?;
        r.get_filter(&p, FilterId::new()).await
    };
    // Three connections in the pool.
    let (x, y, z) = tokio::join!(read(), read(), read());
    for r in [x, y, z] {
        assert!(r.unwrap().is_none());
    }
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(b.url())
        .await
        .unwrap();
    let cut: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND application_name = 'tmirror'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(cut >= 3, "{cut} connections cut");
    let mut failed = 0;
    for i in 0..40 {
        match read().await {
            Ok(found) => assert!(found.is_none()),
            Err(e) => {
                failed += 1;
                assert!(i < 10, "read {i} still failed: {e}");
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(failed <= 3, "{failed} reads failed");
}

async fn writers_on_two_servers_are_serialised(b: &Backend) {
    let stores = vec![b.open().await, b.open().await];
    let p = project(stores[0].as_ref()).await;
    serialised_writers(stores, p).await;
}

#[tokio::test]
async fn postgres_urls_are_checked_and_their_passwords_kept_out_of_errors() {
    let e = match open("postgres://tm:s3cret@127.0.0.1:1/tm", sealer()).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("nothing listens on port 1"),
    };
    assert!(e.contains("cannot connect to PostgreSQL"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
    let e = match open("postgres://tm:s3cret@127.0.0.1:notaport/tm", sealer()).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("invalid URL accepted"),
    };
    assert!(e.contains("invalid PostgreSQL URL"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}

async fn tenancy_records_move_the_auth_revision_and_find_ports_by_address_and_interface(
    b: &Backend,
) {
    let store = b.open().await;
    let a = project(store.as_ref()).await;
    let other = project(store.as_ref()).await;
    let before = store.read().await.unwrap().auth_revision().await.unwrap();

    // Credentials: inserted, listed per project, changed, deleted; each moves the auth revision.
    let key = |ak: &str, p: &ProjectId, role| Credential {
        access_key: ak.into(),
        secret_key: "s".into(),
        project_id: p.clone(),
        role,
        enabled: true,
        created_at: 5,
        last_used_at: None,
    };
    let mut tx = store.write().await.unwrap();
    tx.put_credential(&key("AK1", &a, Role::Reader))
        .await
        .unwrap();
    tx.put_credential(&key("AK2", &other, Role::Operator))
        .await
        .unwrap();
    let rev = tx.commit().await.unwrap();
    let mut r = store.read().await.unwrap();
    let moved = r.auth_revision().await.unwrap();
    assert!(moved > before && moved == rev);
    assert_eq!(r.credentials(Some(&a)).await.unwrap().len(), 1);
    assert_eq!(r.credentials(None).await.unwrap().len(), 2);
    assert_eq!(
        r.operator_credential().await.unwrap().unwrap().access_key,
        "AK2"
    );
    drop(r);
    let mut tx = store.write().await.unwrap();
    let mut c = tx.credential("AK1").await.unwrap().unwrap();
    assert_eq!((c.role, c.enabled, c.created_at), (Role::Reader, true, 5));
    c.enabled = false;
    tx.put_credential(&c).await.unwrap();
    tx.commit().await.unwrap();
    store.credential_used("AK1", 77).await.unwrap();
    let mut r = store.read().await.unwrap();
    let c = r.credential("AK1").await.unwrap().unwrap();
    assert_eq!((c.enabled, c.last_used_at), (false, Some(77)));
    assert!(r.auth_revision().await.unwrap() > moved);
    drop(r);

    // Hosts by token hash; networks; usage counts what blocks a project's deletion.
    let mut tx = store.write().await.unwrap();
    tx.put_host(&Host {
        host_id: "hv1".into(),
        token_hash: "abc".into(),
        enabled: true,
        created_at: 1,
    })
    .await
    .unwrap();
    tx.put_network(&Network {
        id: "net-a".into(),
        name: String::new(),
        project_id: Some(a.clone()),
        cidrs: vec!["10.0.0.0/24".parse().unwrap()],
        created_at: 1,
    })
    .await
    .unwrap();
    let mut bound = port(&a, "10.0.0.7");
    bound.network_id = "net-a".into();
    bound.host_id = "hv1".into();
    bound.binding_profile.interface_name = Some("vm7".into());
    tx.put_port(&bound).await.unwrap();
    tx.put_port(&port(&other, "10.9.0.1")).await.unwrap();
    tx.commit().await.unwrap();
    let mut r = store.read().await.unwrap();
    assert_eq!(
        r.host_by_token_hash("abc").await.unwrap().unwrap().host_id,
        "hv1"
    );
    assert!(r.host_by_token_hash("abd").await.unwrap().is_none());
    assert_eq!(r.network("net-a").await.unwrap().unwrap().cidrs.len(), 1);
    let ids = |ps: Vec<Port>| ps.into_iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(
        ids(r.ports_with_ip("10.0.0.7").await.unwrap()),
        vec![bound.id]
    );
    assert!(r.ports_with_ip("10.0.0.8").await.unwrap().is_empty());
    assert_eq!(
        ids(r.ports_with_interface("vm7").await.unwrap()),
        vec![bound.id]
    );
    assert_eq!(
        ids(r.ports_in_network("net-a").await.unwrap()),
        vec![bound.id]
    );
    assert_eq!(r.any_port(bound.id).await.unwrap().unwrap().project_id, a);
    let usage = r.project_usage(&a).await.unwrap();
    assert_eq!((usage.ports, usage.credentials, usage.networks), (1, 1, 1));
    assert!(!usage.is_empty());
    drop(r);

    // An emptied project can be deleted.
    let mut tx = store.write().await.unwrap();
    tx.delete_port(&a, bound.id).await.unwrap();
    assert!(tx.delete_network("net-a").await.unwrap());
    assert!(tx.delete_credential("AK1").await.unwrap());
    assert!(tx.project_usage(&a).await.unwrap().is_empty());
    assert!(tx.delete_project(&a).await.unwrap());
    assert!(tx.delete_host("hv1").await.unwrap());
    tx.commit().await.unwrap();
    assert!(store
        .read()
        .await
        .unwrap()
        .project(&a)
        .await
        .unwrap()
        .is_none());
}

const SECRET: &str = "the-secret-key-in-clear-0123456789abcdef";

/// A project with the credentials `AK1` and `AK2` (secret [`SECRET`] and `SECRET2`).
async fn credentials_stored(store: &dyn Store) {
    let p = project(store).await;
    let mut tx = store.write().await.unwrap();
    for (ak, sk) in [("AK1", SECRET.to_owned()), ("AK2", format!("{SECRET}2"))] {
        tx.put_credential(&Credential {
            access_key: ak.into(),
            secret_key: sk,
            project_id: p.clone(),
            role: Role::Member,
            enabled: true,
            created_at: 1,
            last_used_at: None,
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn secret_keys_are_encrypted_at_rest_and_round_trip(b: &Backend) {
    let store = b.open().await;
    credentials_stored(store.as_ref()).await;
    let mut r = store.read().await.unwrap();
    assert_eq!(
        r.credential("AK1").await.unwrap().unwrap().secret_key,
        SECRET
    );
    let all = r.credentials(None).await.unwrap();
    assert_eq!(all[1].secret_key, format!("{SECRET}2"));
    drop(r);
    // The column holds `enc:v1:<key id>:…`, never the secret (PostgreSQL: selected; SQLite: the
    // files' bytes too).
    let prefix = format!("enc:v1:{}:", master_key().id());
    for (ak, stored) in b.stored_secrets().await {
        assert!(stored.starts_with(&prefix), "{ak}: {stored}");
        assert!(!stored.contains(SECRET), "{ak}");
    }
    assert!(!contains(&b.file_bytes(), SECRET));
    // Bound to its row: AK1's ciphertext in AK2's row does not open.
    let ak1 = b.stored_secrets().await.remove(0).1;
    b.set_stored_secret("AK2", &ak1).await;
    let mut r = store.read().await.unwrap();
    assert!(matches!(
        r.credential("AK2").await,
        Err(StoreError::Corrupt(_))
    ));
}

async fn plaintext_secrets_are_encrypted_when_the_store_opens(b: &Backend) {
    let store = b.open().await;
    credentials_stored(store.as_ref()).await;
    store.close().await;
    // A database from before encryption.
    b.set_stored_secret("AK1", SECRET).await;
    let store = b.open().await;
    let stored = b.stored_secrets().await;
    assert!(
        stored.iter().all(|(_, s)| s.starts_with("enc:v1:")),
        "{stored:?}"
    );
    let mut r = store.read().await.unwrap();
    assert_eq!(
        r.credential("AK1").await.unwrap().unwrap().secret_key,
        SECRET
    );
}

async fn a_wrong_key_is_refused_and_an_accepted_key_is_re_encrypted(b: &Backend) {
    let store = b.open().await;
    credentials_stored(store.as_ref()).await;
    store.close().await;
    let before = b.stored_secrets().await;
    let other = MasterKey::generate();
    // A wrong key: refused, naming both keys, and nothing is written.
    let e = match open(b.url(), SecretSealer::new(other.clone(), vec![])).await {
        Err(e) => e,
        Ok(_) => panic!("a wrong master key was accepted"),
    };
    let text = e.to_string();
    assert!(matches!(e, StoreError::MasterKey(_)), "{text}");
    assert!(
        text.contains(master_key().id()) && text.contains(other.id()),
        "{text}"
    );
    assert_eq!(b.stored_secrets().await, before);
    // A rotation: the new key with the old one accepted re-encrypts every secret.
    let rotated = open(
        b.url(),
        SecretSealer::new(other.clone(), vec![master_key()]),
    )
    .await
    .unwrap();
    let after = b.stored_secrets().await;
    for ((ak, was), (_, now)) in before.iter().zip(&after) {
        assert_ne!(was, now, "{ak}");
        assert!(now.starts_with(&format!("enc:v1:{}:", other.id())), "{now}");
    }
    let mut r = rotated.read().await.unwrap();
    assert_eq!(
        r.credential("AK1").await.unwrap().unwrap().secret_key,
        SECRET
    );
    drop(r);
    rotated.close().await;
    // The new key alone opens it now; the old one alone no longer does.
    open(b.url(), SecretSealer::new(other, vec![]))
        .await
        .unwrap();
    assert!(matches!(
        open(b.url(), sealer()).await,
        Err(StoreError::MasterKey(_))
    ));
}

/// A port bound to `host` (or unbound for `""`) with the interface `iface` (or the Neutron
/// default for `None`).
fn port_on(project: &ProjectId, ip: &str, host: &str, iface: Option<&str>) -> Port {
    let mut p = port(project, ip);
    p.host_id = host.into();
    p.binding_profile.interface_name = iface.map(str::to_owned);
    p
}

async fn host_rows_hold_the_hosts_ports_enabled_sessions_rules_and_targets(b: &Backend) {
    let store = b.open().await;
    let p = project(store.as_ref()).await;
    let bound = port_on(&p, "10.0.0.1", "hv1", Some("vm1"));
    let named = port_on(&p, "10.0.0.2", "", Some("veth-x"));
    let tapped = port_on(&p, "10.0.0.3", "", None);
    let elsewhere = port_on(&p, "10.0.0.4", "hv2", Some("vm1"));
    let target = port_on(&p, "10.0.0.9", "hv3", None);
    let other_target = port_on(&p, "10.0.0.10", "hv3", None);
    let (f1, f2, f3) = (filter(&p, "f1"), filter(&p, "f2"), filter(&p, "f3"));
    // Enabled (even priorities): 2 and 4 on hv1's ports; 6 elsewhere. Disabled: 3.
    let s2 = session(&f1, &target, vec![bound.id, named.id], 2);
    let s4 = session(&f2, &other_target, vec![tapped.id], 4);
    let s3 = session(&f3, &target, vec![bound.id], 3);
    let s6 = session(&f3, &target, vec![elsewhere.id], 6);
    let mut tx = store.write().await.unwrap();
    for port in [&bound, &named, &tapped, &elsewhere, &target, &other_target] {
        tx.put_port(port).await.unwrap();
    }
    for f in [&f1, &f2, &f3] {
        tx.put_filter(f).await.unwrap();
    }
    let rules = [
        rule(&f1, Direction::Ingress, 2),
        rule(&f1, Direction::Ingress, 1),
        rule(&f2, Direction::Egress, 1),
        rule(&f3, Direction::Egress, 1),
    ];
    for r in &rules {
        tx.put_rule(r).await.unwrap();
    }
    for s in [&s2, &s4, &s3, &s6] {
        tx.put_session(s).await.unwrap();
    }
    let revision = tx.commit().await.unwrap();

    let tap = tapped.interface_name();
    let ifaces = vec!["lo".to_owned(), "veth-x".to_owned(), tap];
    let rows = store
        .agent_data()
        .await
        .unwrap()
        .host_rows("hv1", &ifaces)
        .await
        .unwrap();
    assert_eq!(rows.revision, revision);
    let mut ports: Vec<PortId> = rows.ports.iter().map(|p| p.id).collect();
    ports.sort_by_key(|p| p.to_string());
    let mut want = vec![bound.id, named.id, tapped.id];
    want.sort_by_key(|p| p.to_string());
    assert_eq!(
        ports, want,
        "bound to hv1, or unbound with one of its interfaces"
    );
    assert_eq!(
        rows.sessions.iter().map(|s| s.id).collect::<Vec<_>>(),
        [s2.id, s4.id],
        "the enabled sessions of those ports, by priority"
    );
    assert_eq!(rows.sessions[0].sources.ports(), [bound.id, named.id]);
    let mut got_rules: Vec<RuleId> = rows.rules.iter().map(|r| r.id).collect();
    got_rules.sort_by_key(|r| r.to_string());
    let mut want_rules = vec![rules[0].id, rules[1].id, rules[2].id];
    want_rules.sort_by_key(|r| r.to_string());
    assert_eq!(got_rules, want_rules, "the rules of f1 and f2, not f3's");
    let mut targets: Vec<PortId> = rows.targets.iter().map(|p| p.id).collect();
    targets.sort_by_key(|p| p.to_string());
    let mut want_targets = vec![target.id, other_target.id];
    want_targets.sort_by_key(|p| p.to_string());
    assert_eq!(targets, want_targets);

    // Without the interfaces, only the bound port; a host with nothing has nothing.
    let mut a = store.agent_data().await.unwrap();
    let rows = a.host_rows("hv1", &[]).await.unwrap();
    assert_eq!(rows.ports.len(), 1);
    assert_eq!(
        rows.sessions.iter().map(|s| s.id).collect::<Vec<_>>(),
        [s2.id]
    );
    let rows = a.host_rows("hv9", &["vm1".to_owned()]).await.unwrap();
    assert_eq!(
        rows,
        HostRows {
            revision,
            ..HostRows::default()
        },
        "a bound port's interface name captures nothing on another host"
    );
}

async fn scopes_of(store: &dyn Store, after: u64, upto: u64) -> ChangeScopes {
    store
        .agent_data()
        .await
        .unwrap()
        .change_scopes(after, upto)
        .await
        .unwrap()
}

fn hosts(names: &[&str]) -> ChangeScopes {
    ChangeScopes {
        all: false,
        hosts: names.iter().map(|h| h.to_string()).collect(),
        interfaces: Vec::new(),
        agents: Vec::new(),
    }
}

/// Servers keep each agent's interfaces in memory: a change of them is a revision whose
/// scope names the agent, and the record is written in the same transaction.
async fn an_agents_new_interfaces_are_a_change_of_their_own(b: &Backend) {
    let store = b.open().await;
    let start = *store.revisions().borrow();
    let record = AgentRecord {
        host_id: "hv7".into(),
        registered_at: 5,
        last_seen: 6,
        applied_generation: 0,
        interfaces: vec!["eth0".into()],
        report: serde_json::Value::Null,
    };
    let mut tx = store.write().await.unwrap();
    tx.put_agent_interfaces(&record).await.unwrap();
    let revision = tx.commit().await.unwrap();
    assert_eq!(revision, start + 1, "one revision");
    assert_eq!(
        scopes_of(store.as_ref(), start, revision).await,
        ChangeScopes {
            agents: vec!["hv7".into()],
            ..ChangeScopes::default()
        }
    );
    let stored = store
        .agent_data()
        .await
        .unwrap()
        .agent("hv7")
        .await
        .unwrap();
    assert_eq!(stored, Some(record));
}

async fn writes_record_the_hosts_they_concern(b: &Backend) {
    let store = b.open().await;
    let p = project(store.as_ref()).await;
    let a = port_on(&p, "10.0.0.1", "hv1", None);
    let c = port_on(&p, "10.0.0.2", "hv2", None);
    let loose = port_on(&p, "10.0.0.3", "", Some("veth-x"));
    let target = port_on(&p, "10.0.0.9", "hv9", None);
    let (f, unused) = (filter(&p, "f"), filter(&p, "unused"));
    let mut s = session(&f, &target, vec![a.id, c.id], 2);
    let start = *store.revisions().borrow();
    let mut tx = store.write().await.unwrap();
    for port in [&a, &c, &loose, &target] {
        tx.put_port(port).await.unwrap();
    }
    tx.put_filter(&f).await.unwrap();
    tx.put_filter(&unused).await.unwrap();
    let r = rule(&f, Direction::Ingress, 1);
    tx.put_rule(&r).await.unwrap();
    let r0 = tx.commit().await.unwrap();
    assert_eq!(
        scopes_of(store.as_ref(), start, r0).await,
        ChangeScopes {
            all: false,
            hosts: vec!["hv1".into(), "hv2".into(), "hv9".into()],
            interfaces: vec!["veth-x".into()],
            agents: Vec::new(),
        },
        "new ports concern their hosts, an unbound one its interface"
    );

    // One change per transaction, each with the hosts it concerns.
    let mut last = r0;
    let mut check = |store: Arc<dyn Store>, want: ChangeScopes, label: &'static str| {
        let after = last;
        last = *store.revisions().borrow();
        async move {
            assert_eq!(
                scopes_of(store.as_ref(), after, last).await,
                want,
                "{label}"
            );
        }
    };
    let write = |store: Arc<dyn Store>| async move { store.write().await.unwrap() };

    let mut tx = write(store.clone()).await;
    tx.put_session(&s).await.unwrap();
    tx.commit().await.unwrap();
    check(
        store.clone(),
        hosts(&["hv1", "hv2"]),
        "an enabled session: its sources' hosts",
    )
    .await;

    s.sources = SessionSources::Eni(vec![c.id, loose.id]);
    let mut tx = write(store.clone()).await;
    tx.put_session(&s).await.unwrap();
    tx.commit().await.unwrap();
    let mut want = hosts(&["hv1", "hv2"]);
    want.interfaces = vec!["veth-x".into()];
    check(
        store.clone(),
        want,
        "sources changed: the hosts left and reached",
    )
    .await;

    let mut tx = write(store.clone()).await;
    let mut r2 = r.clone();
    r2.priority = RulePriority::new(5).unwrap();
    tx.put_rule(&r2).await.unwrap();
    tx.commit().await.unwrap();
    let mut want = hosts(&["hv2"]);
    want.interfaces = vec!["veth-x".into()];
    check(
        store.clone(),
        want,
        "a rule: the hosts of the sessions of its filter",
    )
    .await;

    let mut tx = write(store.clone()).await;
    let mut t2 = target.clone();
    t2.fixed_ips[0].ip_address = "10.0.0.10".parse().unwrap();
    tx.put_port(&t2).await.unwrap();
    tx.commit().await.unwrap();
    let mut want = hosts(&["hv2", "hv9"]);
    want.interfaces = vec!["veth-x".into()];
    check(
        store.clone(),
        want,
        "a target's address: its own host and the sessions' hosts",
    )
    .await;

    let mut tx = write(store.clone()).await;
    tx.put_rule(&rule(&unused, Direction::Egress, 1))
        .await
        .unwrap();
    let mut renamed = f.clone();
    renamed.name = "renamed".into();
    tx.put_filter(&renamed).await.unwrap();
    tx.commit().await.unwrap();
    check(
        store.clone(),
        ChangeScopes::default(),
        "an unused filter and a name concern no host",
    )
    .await;

    s.enabled = false;
    let mut tx = write(store.clone()).await;
    tx.put_session(&s).await.unwrap();
    tx.commit().await.unwrap();
    let mut want = hosts(&["hv2"]);
    want.interfaces = vec!["veth-x".into()];
    check(store.clone(), want, "disabling: the hosts it leaves").await;

    let mut tx = write(store.clone()).await;
    s.vni = Vni::new(9).unwrap();
    tx.put_session(&s).await.unwrap();
    tx.commit().await.unwrap();
    check(
        store.clone(),
        ChangeScopes::default(),
        "a disabled session's change concerns no host",
    )
    .await;

    let mut tx = write(store.clone()).await;
    tx.put_host(&Host {
        host_id: "hv7".into(),
        token_hash: "00".into(),
        enabled: true,
        created_at: 0,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    check(
        store.clone(),
        hosts(&["hv7"]),
        "a host's enrolment concerns that host",
    )
    .await;

    // A range covers every revision in it; bookkeeping adds nothing.
    let now = *store.revisions().borrow();
    let all = scopes_of(store.as_ref(), r0, now).await;
    assert!(all.hosts.contains(&"hv1".to_owned()) && all.hosts.contains(&"hv7".to_owned()));
    assert!(scopes_of(store.as_ref(), now, now + 5).await.is_empty());
}

async fn batched_liveness_never_lowers_last_seen_nor_bumps_the_revision(b: &Backend) {
    let store = b.open().await;
    let start = *store.revisions().borrow();
    let mut a = store.agent_data().await.unwrap();
    for (host, seen) in [("hv1", 100), ("hv2", 200)] {
        a.put_agent(&AgentRecord {
            host_id: host.into(),
            registered_at: 1,
            last_seen: seen,
            applied_generation: 0,
            interfaces: vec![format!("{host}-eth0")],
            report: serde_json::json!({"n": 0}),
        })
        .await
        .unwrap();
    }
    a.flush_seen(&[
        AgentSeen {
            host_id: "hv1".into(),
            last_seen: 150,
            applied_generation: 4,
            report: Some(serde_json::json!({"n": 1})),
        },
        AgentSeen {
            host_id: "hv2".into(),
            last_seen: 150,
            applied_generation: 0,
            report: None,
        },
        AgentSeen {
            host_id: "unknown".into(),
            last_seen: 150,
            applied_generation: 9,
            report: None,
        },
    ])
    .await
    .unwrap();
    let got = a.agents().await.unwrap();
    assert_eq!(got.len(), 2, "no record is made for a host without one");
    assert_eq!(
        (got[0].last_seen, &got[0].report),
        (150, &serde_json::json!({"n": 1}))
    );
    assert_eq!(
        (got[1].last_seen, &got[1].report),
        (200, &serde_json::json!({"n": 0})),
        "an older sighting does not lower last_seen; no report keeps the last one"
    );
    let concerned = store
        .read()
        .await
        .unwrap()
        .agents_concerned(&["hv2".into(), "nobody".into()], &["hv1-eth0".into()])
        .await
        .unwrap();
    assert_eq!(
        concerned
            .iter()
            .map(|a| a.host_id.as_str())
            .collect::<Vec<_>>(),
        ["hv1", "hv2"],
        "by host, and by a reported interface"
    );
    assert_eq!(a.current_revision().await.unwrap(), start);
}

async fn agents_are_found_by_a_reported_interface_through_its_own_index(b: &Backend) {
    // An agent stored before the interfaces had a table of their own, with a name twice.
    b.at_schema_before(
        "_agent_interfaces",
        &[
            "INSERT INTO agents (host_id, registered_at, last_seen, applied_generation,
              interfaces, report) VALUES ('old', 1, 1, 0, '[\"tap-a\",\"tap-b\",\"tap-a\"]', '{}')"
                .to_owned(),
        ],
    )
    .await;
    let store = b.open().await;
    let by_interface = |names: &'static [&'static str]| {
        let store = store.clone();
        async move {
            let names: Vec<String> = names.iter().map(|&n| n.to_owned()).collect();
            let found = store
                .read()
                .await
                .unwrap()
                .agents_concerned(&[], &names)
                .await
                .unwrap();
            found.into_iter().map(|a| a.host_id).collect::<Vec<_>>()
        }
    };
    assert_eq!(by_interface(&["tap-b"]).await, ["old"], "migrated");
    assert_eq!(by_interface(&["tap-a", "tap-b"]).await, ["old"], "once");

    let record = |host: &str, interfaces: &[&str]| AgentRecord {
        host_id: host.into(),
        registered_at: 1,
        last_seen: 2,
        applied_generation: 0,
        interfaces: interfaces.iter().map(|&i| i.to_owned()).collect(),
        report: serde_json::json!({}),
    };
    // A new agent, and the old one reporting other interfaces (as the service writes them).
    let mut data = store.agent_data().await.unwrap();
    data.put_agent(&record("new", &["tap-c"])).await.unwrap();
    let mut tx = store.write().await.unwrap();
    tx.put_agent_interfaces(&record("old", &["tap-c", "tap-d"]))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(by_interface(&["tap-c"]).await, ["new", "old"]);
    assert_eq!(by_interface(&["tap-d"]).await, ["old"]);
    assert!(by_interface(&["tap-a", "tap-b"]).await.is_empty(), "gone");
    // A write of the same interfaces (a registration, liveness) keeps them.
    data.put_agent(&record("new", &["tap-c"])).await.unwrap();
    assert_eq!(by_interface(&["tap-c"]).await, ["new", "old"]);
    // A name listed twice (a report's list is the agent's) is one row.
    let mut tx = store.write().await.unwrap();
    tx.put_agent_interfaces(&record("old", &["tap-e", "tap-e"]))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(by_interface(&["tap-e"]).await, ["old"]);
    assert_eq!(by_interface(&["tap-c"]).await, ["new"]);
    // The lookup reads the table, not the agents' lists.
    b.execute(&["DELETE FROM agent_interfaces WHERE interface = 'tap-e'"])
        .await;
    assert!(
        by_interface(&["tap-e"]).await.is_empty(),
        "read from the table"
    );

    // Among 3,000 agents, the lookup reads the interface's index and the agents by key.
    let numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)";
    b.execute(&[&format!(
        "{numbers} INSERT INTO agents (host_id, registered_at, last_seen, applied_generation,
             interfaces, report) SELECT 'hv' || i, 1, 1, 0, '[\"if' || i || '\"]', '{{}}' FROM n"
    )])
    .await;
    if let Backend::Postgres(_) = b {
        b.execute(&["ANALYZE"]).await;
    }
    assert_eq!(by_interface(&["if7", "if3000"]).await, ["hv3000", "hv7"]);
    let plan = b
        .plan(
            "SELECT * FROM agents t WHERE t.host_id IN \
             (SELECT i.host_id FROM agent_interfaces i WHERE i.interface IN ('if7'))",
        )
        .await;
    assert!(
        !plan.contains("SCAN t\n") && !plan.contains("Seq Scan"),
        "the agents are read by key:\n{plan}"
    );
}

async fn a_filters_hosts_are_distinct_pairs_of_where_its_sessions_sources_are_captured(
    b: &Backend,
) {
    // Filter fa: two sessions on ports bound to h1 (both) and h2. fb: a port bound to no
    // host whose binding names its interface (reported by h3), and an EIP of a pool whose
    // gateway is gw. fc: an unbound port of the default interface name (reported by h4).
    // fd: not asked for. h5 reports an interface no source has.
    let store = b.open().await;
    let p = ProjectId::new();
    let pid = p.as_str();
    let port = |id: &str, host: &str, profile: &str| {
        format!(
            "INSERT INTO ports (id, project_id, name, network_id, admin_state_up, mac_address,
                fixed_ips, device_id, device_owner, status, security_groups, host_id,
                binding_profile, created_at, updated_at, revision)
             VALUES ('{id}', '{pid}', '{id}', 'net', TRUE, 'm', '[]', '', '', 'DOWN', '[]', '{host}',
                '{profile}', 0, 0, 1)"
        )
    };
    let session = |id: &str, filter: &str, priority: u32| {
        format!(
            "INSERT INTO sessions (id, project_id, name, description, filter_id, target_id,
                target_type, vni, packet_length, priority, enabled, source_type, created_at,
                updated_at, revision, created_revision)
             VALUES ('{id}', '{pid}', '{id}', '', '{filter}', 'target', 'eni', 1, 96, {priority},
                TRUE, 'eni', 0, 0, 1, 1)"
        )
    };
    let filter = |id: &str| {
        format!(
            "INSERT INTO filters (id, project_id, name, description, created_at, updated_at,
                revision, created_revision) VALUES ('{id}', '{pid}', '{id}', '', 0, 0, 1, 1)"
        )
    };
    let agent = |host: &str, interfaces: &str| {
        format!(
            "INSERT INTO agents (host_id, registered_at, last_seen, applied_generation,
                interfaces, report) VALUES ('{host}', 1, 1, 0, '{interfaces}', '{{}}')"
        )
    };
    let source = |session: &str, port: &str| {
        format!(
            "INSERT INTO session_sources (session_id, port_id, position)
             VALUES ('{session}', '{port}', 0)"
        )
    };
    let statements = [
        format!("INSERT INTO projects (id, created_at) VALUES ('{pid}', 0)"),
        filter("fa"),
        filter("fb"),
        filter("fc"),
        filter("fd"),
        port("target", "", "{}"),
        port("pb1", "h1", "{}"),
        port("pb2", "h2", "{}"),
        port("pu", "", r#"{"interface_name": "vm-x"}"#),
        port("pu2abcdefghijk", "", "{}"),
        agent("h3", r#"["vm-x"]"#),
        agent("h4", r#"["tappu2abcdefgh"]"#),
        agent("h5", r#"["other"]"#),
        "INSERT INTO eip_pools (id, cidrs, host_id, interface_name, created_at)
         VALUES ('pool', '[]', 'gw', 'eth9', 0)"
            .to_owned(),
        format!(
            "INSERT INTO eips (id, project_id, pool_id, address, name, bandwidth, created_at,
                updated_at, revision)
             VALUES ('e1', '{pid}', 'pool', '192.0.2.1', 'e1', '{{}}', 0, 0, 1)"
        ),
        session("s1", "fa", 1),
        session("s2", "fa", 2),
        session("s3", "fb", 3),
        session("s4", "fb", 4),
        session("s5", "fc", 5),
        session("s6", "fd", 6),
        source("s1", "pb1"),
        source("s1", "pb2"),
        source("s2", "pb1"),
        source("s3", "pu"),
        "INSERT INTO session_eip_sources (session_id, eip_id, position) VALUES ('s4', 'e1', 0)"
            .to_owned(),
        source("s5", "pu2abcdefghijk"),
        source("s6", "pb2"),
    ];
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    b.execute(&statements).await;
    let asked = ["fa", "fb", "fc"].map(String::from);
    let pairs_of = |unbound_by_interface| {
        let (store, asked, p) = (&store, &asked, &p);
        async move {
            let pairs = store
                .read()
                .await
                .unwrap()
                .filter_hosts(p, asked, unbound_by_interface)
                .await
                .unwrap();
            pairs
                .into_iter()
                .map(|(f, h)| format!("{f}@{h}"))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        pairs_of(true).await,
        ["fa@h1", "fa@h2", "fb@gw", "fb@h3", "fc@h4"]
    );
    // Unbound ports captured nowhere: the agents that report pu's and pu2's interfaces do
    // not count.
    assert_eq!(pairs_of(false).await, ["fa@h1", "fa@h2", "fb@gw"]);
}

fn member(ip: &str, port: u16, weight: i64) -> LbMember {
    LbMember {
        id: MemberId::new(),
        name: format!("m-{ip}"),
        address: ip.parse().unwrap(),
        port,
        weight: MemberWeight::new(weight).unwrap(),
        admin_state_up: true,
        operating_status: MemberHealth::Initial,
        port_id: None,
        subnet_id: "subnet-1".into(),
    }
}

fn load_balancer(project: &ProjectId, members: Vec<LbMember>) -> LoadBalancer {
    LoadBalancer {
        id: LoadBalancerId::new(),
        project_id: project.clone(),
        name: "collectors".into(),
        description: "d".into(),
        vip_address: Some("10.0.9.9".parse().unwrap()),
        admin_state_up: true,
        members,
        health_monitor: Some(HealthMonitor::tcp()),
        kept: serde_json::json!({"huawei": {"availability_zone_list": ["az1"]}}),
        created_at: Timestamp(1),
        updated_at: Timestamp(2),
    }
}

async fn load_balancers_round_trip_with_their_members_in_order(b: &Backend) {
    let store = b.open().await;
    let p = project(store.as_ref()).await;
    let other = project(store.as_ref()).await;
    // Added out of address order: the order of addition is kept.
    let mut lb = load_balancer(
        &p,
        vec![
            member("10.0.0.3", 4789, 1),
            member("10.0.0.1", 4789, 100),
            member("10.0.0.2", 6081, 0),
        ],
    );
    lb.members[1].port_id = Some(PortId::new());
    let mut bare = load_balancer(&p, vec![]);
    bare.health_monitor = None;
    bare.vip_address = None;
    let mut tx = store.write().await.unwrap();
    tx.put_load_balancer(&lb).await.unwrap();
    tx.put_load_balancer(&bare).await.unwrap();
    tx.commit().await.unwrap();

    let mut r = store.read().await.unwrap();
    assert_eq!(
        r.get_load_balancer(&p, lb.id).await.unwrap(),
        Some(lb.clone())
    );
    assert_eq!(
        r.get_load_balancer(&other, lb.id).await.unwrap(),
        None,
        "another project's"
    );
    assert_eq!(
        r.load_balancers(&p).await.unwrap(),
        vec![lb.clone(), bare.clone()]
    );
    assert_eq!(r.load_balancers(&other).await.unwrap(), vec![]);
    assert_eq!(
        r.monitored_load_balancers().await.unwrap(),
        vec![lb.clone()]
    );
    assert_eq!(
        r.count_in_project(&p, ResourceKind::LoadBalancer)
            .await
            .unwrap(),
        2
    );
    assert_eq!(r.project_usage(&p).await.unwrap().load_balancers, 2);
    drop(r);

    // Replacing the members replaces the set; a removed member is gone.
    lb.members.remove(0);
    lb.members[0].operating_status = MemberHealth::Offline;
    lb.members.push(member("10.0.0.4", 4789, 5));
    let mut tx = store.write().await.unwrap();
    tx.put_load_balancer(&lb).await.unwrap();
    tx.commit().await.unwrap();
    let mut r = store.read().await.unwrap();
    assert_eq!(
        r.get_load_balancer(&p, lb.id).await.unwrap(),
        Some(lb.clone())
    );
    drop(r);

    // One member per address and port: the database backs the service's check.
    let mut dup = lb.clone();
    let mut again = member("10.0.0.4", 4789, 1);
    again.name = "again".into();
    dup.members.push(again);
    let mut tx = store.write().await.unwrap();
    assert!(tx.put_load_balancer(&dup).await.is_err());
    drop(tx);

    // Deleting takes the members along, and only in the owner's project.
    let mut tx = store.write().await.unwrap();
    assert!(!tx.delete_load_balancer(&other, lb.id).await.unwrap());
    assert!(tx.delete_load_balancer(&p, lb.id).await.unwrap());
    tx.commit().await.unwrap();
    let mut r = store.read().await.unwrap();
    assert_eq!(r.get_load_balancer(&p, lb.id).await.unwrap(), None);
    assert_eq!(
        r.count_in_project(&p, ResourceKind::Member).await.unwrap(),
        0
    );
}

async fn load_balancer_writes_wake_the_hosts_of_the_sessions_aimed_at_them(b: &Backend) {
    let store = b.open().await;
    let p = project(store.as_ref()).await;
    let source = port_on(&p, "10.0.0.1", "hv1", None);
    let collector = port_on(&p, "10.0.0.9", "hv9", None);
    let f = filter(&p, "f");
    let mut lb = load_balancer(&p, vec![member("10.0.0.9", 4789, 1)]);
    let mut s = session(&f, &collector, vec![source.id], 2);
    s.target = SessionTarget::LoadBalancer(lb.id);
    let mut tx = store.write().await.unwrap();
    tx.put_port(&source).await.unwrap();
    tx.put_port(&collector).await.unwrap();
    tx.put_filter(&f).await.unwrap();
    tx.put_load_balancer(&lb).await.unwrap();
    tx.put_session(&s).await.unwrap();
    let before = tx.commit().await.unwrap();

    let mut r = store.read().await.unwrap();
    assert_eq!(
        r.sessions_with_load_balancer(lb.id).await.unwrap(),
        vec![s.id]
    );
    assert_eq!(
        r.get_session(&p, s.id).await.unwrap().unwrap().target,
        s.target
    );
    assert_eq!(
        r.sessions_with_target(collector.id).await.unwrap(),
        vec![],
        "not a port target"
    );
    drop(r);

    // A health verdict reaches the host of the session's source.
    lb.members[0].operating_status = MemberHealth::Offline;
    let mut tx = store.write().await.unwrap();
    tx.put_load_balancer(&lb).await.unwrap();
    let after = tx.commit().await.unwrap();
    assert_eq!(
        scopes_of(store.as_ref(), before, after).await,
        hosts(&["hv1"])
    );

    // The host's rows carry the load balancer with its members.
    let rows = store
        .agent_data()
        .await
        .unwrap()
        .host_rows("hv1", &[])
        .await
        .unwrap();
    assert_eq!(rows.sessions.len(), 1);
    assert_eq!(rows.load_balancers, vec![lb.clone()]);
    assert!(rows.targets.is_empty());
}

async fn one_server_holds_the_health_lease_at_a_time(b: &Backend) {
    let one = b.open().await;
    let two = b.open().await;
    let take = |store: Arc<dyn Store>, holder: &'static str, now: i64| async move {
        let mut tx = store.write().await.unwrap();
        let held = tx.take_health_lease(holder, now, now + 30).await.unwrap();
        tx.commit().await.unwrap();
        held
    };
    let start = *one.revisions().borrow();
    assert!(take(one.clone(), "a", 100).await, "free: taken");
    assert!(
        !take(two.clone(), "b", 110).await,
        "held by another until 130"
    );
    assert!(
        take(one.clone(), "a", 120).await,
        "renewed by its holder, now until 150"
    );
    assert!(!take(two.clone(), "b", 140).await);
    assert!(take(two.clone(), "b", 151).await, "expired: taken over");
    assert!(!take(one.clone(), "a", 160).await, "the old holder lost it");
    assert_eq!(
        *one.revisions().borrow(),
        start,
        "the lease bumps no revision"
    );
}

fn eip_pool(id: &str, cidr: &str, host: &str) -> EipPool {
    EipPool {
        id: id.into(),
        cidrs: vec![cidr.parse().unwrap()],
        host_id: host.into(),
        interface_name: if host.is_empty() { "" } else { "eth-ext" }.into(),
        created_at: 5,
    }
}

fn eip(project: &ProjectId, pool: &str, address: &str) -> Eip {
    Eip {
        id: EipId::new(),
        project_id: project.clone(),
        pool_id: pool.into(),
        address: address.parse().unwrap(),
        name: "web".into(),
        port_id: None,
        bandwidth: Bandwidth {
            id: "bw".into(),
            name: "bw-1".into(),
            size: 10,
            share_type: "PER".into(),
            charge_mode: "traffic".into(),
        },
        created_at: Timestamp(6),
        updated_at: Timestamp(6),
    }
}

async fn eips_pools_and_eip_sessions_round_trip_and_wake_the_gateway(b: &Backend) {
    let store = b.open().await;
    let p = project(store.as_ref()).await;
    let pool = eip_pool("5_bgp", "198.51.100.0/24", "gw1");
    let port = port(&p, "10.0.0.5");
    let target = port_on(&p, "10.0.0.9", "hv9", None);
    let f = filter(&p, "f");
    let mut e1 = eip(&p, "5_bgp", "198.51.100.1");
    let e2 = eip(&p, "5_bgp", "198.51.100.2");
    let mut tx = store.write().await.unwrap();
    tx.put_eip_pool(&pool).await.unwrap();
    for x in [&port, &target] {
        tx.put_port(x).await.unwrap();
    }
    tx.put_filter(&f).await.unwrap();
    e1.port_id = Some(port.id);
    tx.put_eip(&e1).await.unwrap();
    tx.put_eip(&e2).await.unwrap();
    tx.commit().await.unwrap();

    // One address, one EIP.
    let mut tx = store.write().await.unwrap();
    let taken = eip(&p, "5_bgp", "198.51.100.1");
    assert!(matches!(
        tx.put_eip(&taken).await,
        Err(StoreError::Unique("eips_address"))
    ));
    drop(tx);

    let mut r = store.read().await.unwrap();
    assert_eq!(r.eip_pool("5_bgp").await.unwrap(), Some(pool.clone()));
    assert_eq!(r.eip_pools().await.unwrap(), std::slice::from_ref(&pool));
    assert_eq!(r.get_eip(&p, e1.id).await.unwrap(), Some(e1.clone()));
    assert_eq!(r.get_eip(&ProjectId::new(), e1.id).await.unwrap(), None);
    assert_eq!(r.list_eips(&p).await.unwrap(), [e1.clone(), e2.clone()]);
    assert_eq!(r.eips_in_pool("5_bgp").await.unwrap().len(), 2);
    assert_eq!(r.eips_of_port(port.id).await.unwrap(), [e1.id]);
    // Gateways by EIP, of the project's EIPs asked for only.
    let mut gateways = r.eip_gateways(&p, &[e1.id, e2.id]).await.unwrap();
    gateways.sort();
    let mut expected = vec![(e1.id, "gw1".to_owned()), (e2.id, "gw1".to_owned())];
    expected.sort();
    assert_eq!(gateways, expected);
    assert!(r
        .eip_gateways(&ProjectId::new(), &[e1.id])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(r.count_in_project(&p, ResourceKind::Eip).await.unwrap(), 2);
    drop(r);

    // An eip session keeps its EIPs in order, and its writes wake the pool's gateway.
    let before = *store.revisions().borrow();
    let mut s = session(&f, &target, Vec::new(), 2);
    s.sources = SessionSources::Eip(vec![e2.id, e1.id]);
    let mut tx = store.write().await.unwrap();
    tx.put_session(&s).await.unwrap();
    let after = tx.commit().await.unwrap();
    let scopes = scopes_of(store.as_ref(), before, after).await;
    assert!(scopes.hosts.contains(&"gw1".to_owned()), "{scopes:?}");
    let mut r = store.read().await.unwrap();
    let got = r.get_session(&p, s.id).await.unwrap().unwrap();
    assert_eq!(got.sources, SessionSources::Eip(vec![e2.id, e1.id]));
    assert_eq!(r.sessions_with_eip_source(e1.id).await.unwrap(), [s.id]);
    assert!(r.sessions_with_source(port.id).await.unwrap().is_empty());
    drop(r);

    // The gateway's rows carry the mirrored EIPs with the pool's interface, and their
    // enabled sessions; the target's host gets none of it.
    let mut a = store.agent_data().await.unwrap();
    let rows = a.host_rows("gw1", &[]).await.unwrap();
    assert_eq!(
        rows.eips,
        [
            (e1.clone(), "eth-ext".to_owned()),
            (e2.clone(), "eth-ext".to_owned())
        ]
    );
    assert_eq!(rows.sessions, [s.clone()]);
    assert!(rows.ports.is_empty());
    assert_eq!(rows.targets, std::slice::from_ref(&target));
    assert!(a.host_rows("hv9", &[]).await.unwrap().eips.is_empty());
    drop(a);

    // A rule of its filter and a change of its target wake the gateway too.
    let before = *store.revisions().borrow();
    let mut tx = store.write().await.unwrap();
    tx.put_rule(&rule(&f, Direction::Ingress, 1)).await.unwrap();
    let after = tx.commit().await.unwrap();
    assert!(scopes_of(store.as_ref(), before, after)
        .await
        .hosts
        .contains(&"gw1".to_owned()));
    let before = *store.revisions().borrow();
    let mut tx = store.write().await.unwrap();
    tx.put_port(&target).await.unwrap();
    let after = tx.commit().await.unwrap();
    assert_eq!(
        scopes_of(store.as_ref(), before, after).await,
        hosts(&["gw1", "hv9"])
    );

    // Disabled, the session mirrors nothing: no EIP in the gateway's rows.
    let mut off = s.clone();
    off.enabled = false;
    let mut tx = store.write().await.unwrap();
    tx.put_session(&off).await.unwrap();
    tx.commit().await.unwrap();
    let mut a = store.agent_data().await.unwrap();
    let rows = a.host_rows("gw1", &[]).await.unwrap();
    assert!(rows.eips.is_empty() && rows.sessions.is_empty(), "{rows:?}");
    drop(a);
    let mut tx = store.write().await.unwrap();
    tx.put_session(&s).await.unwrap();
    tx.commit().await.unwrap();

    // An EIP that a session mirrors stays (the foreign key backs the service's rule).
    let mut tx = store.write().await.unwrap();
    assert!(tx.delete_eip(&p, e1.id).await.is_err());
    drop(tx);

    // Moving the pool's gateway wakes the old and the new one.
    let before = *store.revisions().borrow();
    let mut tx = store.write().await.unwrap();
    tx.put_eip_pool(&eip_pool("5_bgp", "198.51.100.0/24", "gw2"))
        .await
        .unwrap();
    let after = tx.commit().await.unwrap();
    assert_eq!(
        scopes_of(store.as_ref(), before, after).await,
        hosts(&["gw1", "gw2"])
    );
    let mut a = store.agent_data().await.unwrap();
    assert!(a.host_rows("gw1", &[]).await.unwrap().eips.is_empty());
    assert_eq!(a.host_rows("gw2", &[]).await.unwrap().eips.len(), 2);
    drop(a);

    // An eip session aimed at a load balancer: the load balancer's writes wake the gateway.
    let lb = load_balancer(&p, vec![member("10.0.0.9", 4789, 1)]);
    let mut to_lb = session(&f, &target, Vec::new(), 4);
    to_lb.sources = SessionSources::Eip(vec![e2.id]);
    to_lb.target = SessionTarget::LoadBalancer(lb.id);
    let mut tx = store.write().await.unwrap();
    tx.put_load_balancer(&lb).await.unwrap();
    tx.put_session(&to_lb).await.unwrap();
    tx.commit().await.unwrap();
    let before = *store.revisions().borrow();
    let mut tx = store.write().await.unwrap();
    tx.put_load_balancer(&lb).await.unwrap();
    let after = tx.commit().await.unwrap();
    assert_eq!(
        scopes_of(store.as_ref(), before, after).await,
        hosts(&["gw2"])
    );
    let mut tx = store.write().await.unwrap();
    assert!(tx.delete_session(&p, to_lb.id).await.unwrap());
    assert!(tx.delete_load_balancer(&p, lb.id).await.unwrap());
    tx.commit().await.unwrap();

    // Once the session is gone, the EIPs and then the pool go.
    let mut tx = store.write().await.unwrap();
    assert!(tx.delete_session(&p, s.id).await.unwrap());
    assert!(tx.delete_eip(&p, e1.id).await.unwrap());
    assert!(tx.delete_eip(&p, e2.id).await.unwrap());
    assert!(!tx.delete_eip(&p, e2.id).await.unwrap());
    assert!(tx.delete_eip_pool("5_bgp").await.unwrap());
    tx.commit().await.unwrap();
    let mut r = store.read().await.unwrap();
    assert!(r.list_eips(&p).await.unwrap().is_empty());
    assert!(r.eip_pools().await.unwrap().is_empty());
}

/// The ids of `ports`, in order.
fn port_ids(ports: Vec<Port>) -> Vec<PortId> {
    ports.into_iter().map(|p| p.id).collect()
}

/// The ports of every project that hold `ip`, by the store's address lookup.
async fn holders(store: &dyn Store, ip: &str) -> Vec<PortId> {
    let mut r = store.read().await.unwrap();
    port_ids(r.ports_with_ip(ip).await.unwrap())
}

/// The ports of `project` a list with the fixed-IP condition `ip` finds.
async fn listed_with_ip(store: &dyn Store, project: &ProjectId, ip: &str) -> Vec<PortId> {
    let q = ListQuery {
        conditions: vec![Condition {
            field: PortField::FixedIpAddress,
            values: vec![Value::Text(ip.into())],
        }],
        ..ListQuery::all(100)
    };
    let mut r = store.read().await.unwrap();
    r.list_ports(project, &q)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.id)
        .collect()
}

/// Writes `port` in a transaction of its own; the store's answer.
async fn try_put_port(store: &dyn Store, port: &Port) -> StoreResult<u64> {
    let mut tx = store.write().await?;
    tx.put_port(port).await?;
    tx.commit().await
}

async fn port_addresses_follow_their_port_and_a_network_holds_an_address_once(b: &Backend) {
    let store = b.open().await;
    let s = store.as_ref();
    let p = project(s).await;
    let other = project(s).await;

    let mut a = port(&p, "10.1.0.1");
    try_put_port(s, &a).await.unwrap();
    assert_eq!(holders(s, "10.1.0.1").await, [a.id]);
    assert_eq!(listed_with_ip(s, &p, "10.1.0.1").await, [a.id]);

    // A second holder in the same network is refused by the store itself, whatever the
    // project, and the refused transaction leaves nothing behind.
    for owner in [&p, &other] {
        let twin = port(owner, "10.1.0.1");
        let refused = try_put_port(s, &twin).await;
        assert!(
            matches!(refused, Err(StoreError::Unique("port_address"))),
            "{refused:?}"
        );
        assert!(store
            .read()
            .await
            .unwrap()
            .any_port(twin.id)
            .await
            .unwrap()
            .is_none());
    }
    assert_eq!(holders(s, "10.1.0.1").await, [a.id]);

    // Another network may hold it (the service decides whether that project may).
    let mut elsewhere = port(&p, "10.1.0.1");
    elsewhere.network_id = "m".into();
    try_put_port(s, &elsewhere).await.unwrap();
    assert_eq!(holders(s, "10.1.0.1").await, [a.id, elsewhere.id]);

    // A changed address moves its row: the old one is free again, the new one found.
    a.fixed_ips[0].ip_address = "10.1.0.2".parse().unwrap();
    try_put_port(s, &a).await.unwrap();
    assert_eq!(holders(s, "10.1.0.1").await, [elsewhere.id]);
    assert_eq!(holders(s, "10.1.0.2").await, [a.id]);
    assert_eq!(listed_with_ip(s, &p, "10.1.0.1").await, [elsewhere.id]);
    let mut taker = port(&p, "10.1.0.1");
    try_put_port(s, &taker).await.unwrap();

    // A changed network moves it too: "n" no longer holds 10.1.0.2, "m" does.
    a.network_id = "m".into();
    try_put_port(s, &a).await.unwrap();
    try_put_port(s, &port(&p, "10.1.0.2")).await.unwrap();
    let mut clash = port(&p, "10.1.0.2");
    clash.network_id = "m".into();
    assert!(matches!(
        try_put_port(s, &clash).await,
        Err(StoreError::Unique("port_address"))
    ));

    // IPv6 in its canonical text; an update that keeps the address keeps its row.
    taker.fixed_ips.push(FixedIp {
        subnet_id: "s6".into(),
        ip_address: "2001:DB8:0:0::1".parse().unwrap(),
    });
    try_put_port(s, &taker).await.unwrap();
    taker.name = "renamed".into();
    try_put_port(s, &taker).await.unwrap();
    assert_eq!(holders(s, "2001:db8::1").await, [taker.id]);
    assert_eq!(holders(s, "10.1.0.1").await, [elsewhere.id, taker.id]);

    // Ports by id: the project's only, in any order.
    let mut r = store.read().await.unwrap();
    let mut found = port_ids(
        r.ports_by_ids(&p, &[a.id, taker.id, PortId::new()])
            .await
            .unwrap(),
    );
    found.sort_by_key(|id| id.to_string());
    let mut want = vec![a.id, taker.id];
    want.sort_by_key(|id| id.to_string());
    assert_eq!(found, want);
    assert!(r.ports_by_ids(&other, &[a.id]).await.unwrap().is_empty());
    drop(r);

    // A deleted port's addresses go with it.
    let mut tx = store.write().await.unwrap();
    assert!(tx.delete_port(&p, taker.id).await.unwrap());
    tx.commit().await.unwrap();
    assert!(holders(s, "2001:db8::1").await.is_empty());
    assert_eq!(holders(s, "10.1.0.1").await, [elsewhere.id]);
    try_put_port(s, &port(&other, "10.1.0.1")).await.unwrap();
}

async fn ports_stored_before_the_address_table_are_found_by_it_after_the_migration(b: &Backend) {
    let p = ProjectId::new();
    let old = |net: &str, ip: &str| {
        let mut x = port(&p, ip);
        x.network_id = net.into();
        x
    };
    // Written as an earlier release did, before the rule of one holder per network: two
    // ports of "n" share 10.0.0.5.
    let first = old("n", "10.0.0.5");
    let duplicate = old("n", "10.0.0.5");
    let other_network = old("m", "10.0.0.5");
    let single = old("n", "10.0.0.6");
    let mut statements = vec![format!(
        "INSERT INTO projects (id, created_at) VALUES ('{}', 0)",
        p.as_str()
    )];
    for x in [&first, &duplicate, &other_network, &single] {
        statements.push(format!(
            "INSERT INTO ports (id, project_id, name, network_id, admin_state_up, mac_address,
                fixed_ips, device_id, device_owner, status, security_groups, host_id,
                binding_profile, created_at, updated_at, revision)
             VALUES ('{}', '{}', 'old', '{}', TRUE, '{}', '{}', '', '', 'DOWN', '[]', '', '{}',
                1, 1, 1)",
            x.id,
            p.as_str(),
            x.network_id,
            x.mac_address,
            serde_json::to_string(&x.fixed_ips).unwrap(),
            serde_json::to_string(&x.binding_profile).unwrap(),
        ));
    }
    b.at_schema_before("_port_addresses", &statements).await;

    // Opening migrates; the old ports' addresses are in the table.
    let store = b.open().await;
    let s = store.as_ref();
    assert_eq!(
        holders(s, "10.0.0.5").await,
        [first.id, duplicate.id, other_network.id]
    );
    assert_eq!(holders(s, "10.0.0.6").await, [single.id]);
    assert_eq!(listed_with_ip(s, &p, "10.0.0.6").await, [single.id]);

    // A new port cannot take an address an old port holds in its network.
    for ip in ["10.0.0.5", "10.0.0.6"] {
        let refused = try_put_port(s, &old("n", ip)).await;
        assert!(
            matches!(refused, Err(StoreError::Unique("port_address"))),
            "{ip}: {refused:?}"
        );
    }
    // The legacy duplicate can still be changed, and while it lives the address stays in use
    // for the service's check even after the first holder is gone.
    let mut renamed = duplicate.clone();
    renamed.name = "renamed".into();
    try_put_port(s, &renamed).await.unwrap();
    let mut tx = store.write().await.unwrap();
    assert!(tx.delete_port(&p, first.id).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(
        holders(s, "10.0.0.5").await,
        [duplicate.id, other_network.id]
    );
}

async fn list_pages_shows_and_address_lookups_are_served_by_indexes(b: &Backend) {
    // The migrations are applied by opening a store. Then rows enough for PostgreSQL's
    // planner to prefer an index where one serves (on a near-empty table any plan is as
    // good): 20,000 ports, filters and sessions, of which project `p`, the one read, holds
    // 200 (a page read along the table's order would wade through the others' rows), with
    // PostgreSQL's statistics.
    // SQLite plans without statistics here, as in production (the store never runs ANALYZE).
    b.open().await;
    let numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)";
    b.execute(&[
        "INSERT INTO projects (id, created_at) VALUES ('p', 0), ('p2', 0), ('p3', 0), ('p4', 0)",
        &format!(
            "{numbers} INSERT INTO filters (id, project_id, name, description, created_at,
                updated_at, revision, created_revision)
             SELECT 'f' || i, CASE i % 100 WHEN 0 THEN 'p' ELSE 'p' || (i % 3 + 2) END,
                'name' || i, '', 0, 0, 1, 1 FROM n"
        ),
        &format!(
            "{numbers} INSERT INTO ports (id, project_id, name, network_id, admin_state_up,
                mac_address, fixed_ips, device_id, device_owner, status, security_groups,
                host_id, binding_profile, created_at, updated_at, revision)
             SELECT 'port' || i, CASE i % 100 WHEN 0 THEN 'p' ELSE 'p' || (i % 3 + 2) END,
                'name' || i, 'net', TRUE, 'm', '[]', '', '', 'DOWN', '[]', 'h' || (i % 50),
                '{{}}', 0, 0, 1 FROM n"
        ),
        "INSERT INTO port_addresses (port_id, network_id, address)
         SELECT id, network_id, 'a' || id FROM ports",
        &format!(
            "{numbers} INSERT INTO sessions (id, project_id, name, description, filter_id,
                target_id, target_type, vni, packet_length, priority, enabled, source_type,
                created_at, updated_at, revision, created_revision)
             SELECT 's' || i, CASE i % 100 WHEN 0 THEN 'p' ELSE 'p' || (i % 3 + 2) END,
                'name' || i, '', 'f4', 'port4', 'eni', 1, 96, i, TRUE,
                'eni', 0, 0, 1, 1 FROM n"
        ),
    ])
    .await;
    if let Backend::Postgres(_) = b {
        b.execute(&["ANALYZE"]).await;
    }
    let ports_by_ids = format!(
        "SELECT * FROM ports t WHERE t.id IN ({})",
        (0..100)
            .map(|i| format!("'port{i}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // The store's queries behind a show, a list page after a marker, a page narrowed by name
    // and the address-in-use check (crate::shared::{reads, tenancy}), and the index each
    // must use: none may read every row of its table.
    let cases = [
        (
            "SELECT t.* FROM sessions t WHERE t.id = 'x' AND t.project_id = 'p'",
            "sessions_id",
        ),
        (
            "SELECT seq FROM sessions WHERE id = 'x' AND project_id = 'p'",
            "sessions_id",
        ),
        (
            "SELECT t.* FROM ports t WHERE t.id = 'x' AND t.project_id = 'p'",
            "ports_id",
        ),
        (
            "SELECT t.* FROM filters t WHERE t.id = 'x' AND t.project_id = 'p'",
            "filters_id",
        ),
        (
            "SELECT t.* FROM sessions t WHERE t.project_id = 'p' AND t.seq > 5 \
             ORDER BY t.seq LIMIT 101",
            "sessions_project",
        ),
        (
            "SELECT t.* FROM ports t WHERE t.project_id = 'p' AND t.seq > 5 \
             ORDER BY t.seq LIMIT 101",
            "ports_project",
        ),
        (
            "SELECT t.* FROM filters t WHERE t.project_id = 'p' AND t.seq > 5 \
             ORDER BY t.seq LIMIT 101",
            "filters_project",
        ),
        (
            "SELECT t.* FROM sessions t WHERE t.project_id = 'p' AND t.name IN ('n') \
             AND t.seq > 5 ORDER BY t.seq LIMIT 101",
            "sessions_name",
        ),
        (
            "SELECT t.* FROM ports t WHERE t.project_id = 'p' AND t.name IN ('n') \
             AND t.seq > 5 ORDER BY t.seq LIMIT 101",
            "ports_name",
        ),
        (
            "SELECT t.* FROM filters t WHERE t.project_id = 'p' AND t.name IN ('n') \
             AND t.seq > 5 ORDER BY t.seq LIMIT 101",
            "filters_name",
        ),
        (
            "SELECT * FROM ports WHERE id IN \
             (SELECT port_id FROM port_addresses WHERE address = '10.0.0.1') ORDER BY seq",
            "port_addresses_address",
        ),
        // ports_by_ids, with a page's worth of ids.
        (ports_by_ids.as_str(), "ports_id"),
    ];
    for (sql, index) in cases {
        let plan = b.plan(sql).await;
        // SQLite names a UNIQUE column's index sqlite_autoindex_<table>_1; PostgreSQL
        // <table>_id_key.
        let names_it = match index.strip_suffix("_id") {
            Some(table) => {
                plan.contains(&format!("sqlite_autoindex_{table}_1"))
                    || plan.contains(&format!("{table}_id_key"))
            }
            None => plan.contains(index),
        };
        assert!(names_it, "{sql}\nshould use {index}:\n{plan}");
        assert!(
            !plan.contains("SCAN t\n") && !plan.contains("Seq Scan"),
            "{sql}:\n{plan}"
        );
    }
}

async fn a_sessions_source_captures_are_read_port_by_port_by_key(b: &Backend) {
    // Where the Alibaba session page's sources are captured and the agents there, for a
    // project of 1,000 ports each the source of a session of its own, planned first without statistics (a new
    // deployment, or rows newer than the last ANALYZE: PostgreSQL hashed every port of the
    // project for each session), then with them.
    b.open().await;
    let numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)";
    b.execute(&[
        "INSERT INTO projects (id, created_at) VALUES ('p', 0)",
        "INSERT INTO filters (id, project_id, name, description, created_at, updated_at,
            revision, created_revision) VALUES ('f', 'p', 'f', '', 0, 0, 1, 1)",
        &format!(
            "{numbers} INSERT INTO ports (id, project_id, name, network_id, admin_state_up,
                mac_address, fixed_ips, device_id, device_owner, status, security_groups,
                host_id, binding_profile, created_at, updated_at, revision)
             SELECT 'port' || i, 'p', 'name' || i, 'net', TRUE, 'm', '[]', '', '', 'DOWN',
                '[]', 'h' || (i % 50), '{{}}', 0, 0, 1 FROM n"
        ),
        &format!(
            "{numbers} INSERT INTO sessions (id, project_id, name, description, filter_id,
                target_id, target_type, vni, packet_length, priority, enabled, source_type,
                created_at, updated_at, revision, created_revision)
             SELECT 's' || i, 'p', 'name' || i, '', 'f', 'port1', 'eni', 1, 96, i, TRUE,
                'eni', 0, 0, 1, 1 FROM n"
        ),
        "INSERT INTO session_sources (session_id, port_id, position)
         SELECT id, 'port' || substr(id, 2), 0 FROM sessions",
        // The agents there, and as many more that report interfaces of their own.
        &format!(
            "{numbers} INSERT INTO agents (host_id, registered_at, last_seen,
                applied_generation, interfaces, report)
             SELECT 'h' || i, 1, 1, 0, '[\"tap' || i || '\"]', '{{}}' FROM n"
        ),
    ])
    .await;
    let captures_sql = match b {
        Backend::Sqlite(..) => tmirror_store::sqlite::SOURCE_CAPTURES_SQL,
        Backend::Postgres(_) => tmirror_store::postgres::SOURCE_CAPTURES_SQL,
    };
    let captures = format!("SELECT {captures_sql} FROM sessions t WHERE t.id = 's7'");
    for statistics in [false, true] {
        if statistics {
            if let Backend::Postgres(_) = b {
                b.execute(&["ANALYZE"]).await;
            }
        }
        let plan = b.plan(&captures).await;
        // SQLite names ports' UNIQUE id index sqlite_autoindex_ports_1; PostgreSQL
        // ports_id_key.
        let by_key = plan.contains("sqlite_autoindex_ports_1") || plan.contains("ports_id_key");
        assert!(
            by_key && !plan.contains("Hash") && !plan.contains("SCAN p\n"),
            "statistics: {statistics}: {captures}\nshould read each port by its key:\n{plan}"
        );
        // The agents capturing each port: by the port's host or its interface, by key (a
        // SQLite scan may go through an index: `SCAN i USING COVERING INDEX …`).
        for table in ["a", "i", "agents", "agent_interfaces"] {
            let scanned = plan.lines().any(|l| {
                let l = l.trim();
                l == format!("SCAN {table}") || l.starts_with(&format!("SCAN {table} "))
            });
            assert!(
                !scanned && !plan.contains(&format!("Seq Scan on {table}")),
                "statistics: {statistics}: {captures}\nshould read agents by key:\n{plan}"
            );
        }
    }
}

async fn a_pages_source_captures_carry_the_agents_capturing_them(b: &Backend) {
    // A session's sources: a port bound to a host with an agent, one bound to a host
    // without, one bound to none whose interface two agents reported (another agent reports
    // another name), one bound to none that nobody reported.
    let s = b.open().await;
    let p = project(s.as_ref()).await;
    let f = filter(&p, "f");
    let target = port(&p, "10.0.0.9");
    // The bound ones name interfaces that agents report: they must be found by host only.
    let mut bound = port(&p, "10.0.0.1");
    bound.host_id = "hv1".into();
    bound.binding_profile.interface_name = Some("vm-b".into());
    let mut hostless = port(&p, "10.0.0.2");
    hostless.host_id = "hv9".into();
    hostless.binding_profile.interface_name = Some("vm-a".into());
    let mut reported = port(&p, "10.0.0.3");
    reported.binding_profile.interface_name = Some("vm-a".into());
    let nobodys = port(&p, "10.0.0.4");
    // Bound to none, named by the default (`tap` and the start of its id), which hv4 reports.
    let by_default = port(&p, "10.0.0.5");
    let sources = [&bound, &hostless, &reported, &nobodys, &by_default];
    let sess = session(&f, &target, sources.iter().map(|p| p.id).collect(), 1);
    let mut tx = s.write().await.unwrap();
    tx.put_filter(&f).await.unwrap();
    for port in sources.iter().copied().chain([&target]) {
        tx.put_port(port).await.unwrap();
    }
    tx.put_session(&sess).await.unwrap();
    tx.commit().await.unwrap();
    let mut data = s.agent_data().await.unwrap();
    for (host, seen, applied, interfaces) in [
        ("hv1", 10, 4, &["vm-a", "tap1"][..]),
        ("hv2", 20, 5, &["vm-a"][..]),
        ("hv3", 30, 6, &["vm-a", "vm-b"][..]),
        (
            "hv4",
            1 << 40,
            1 << 35,
            &["vm-b", &by_default.interface_name()][..],
        ),
    ] {
        data.put_agent(&AgentRecord {
            host_id: host.into(),
            registered_at: 1,
            last_seen: seen,
            applied_generation: applied,
            interfaces: interfaces.iter().map(|&i| i.to_owned()).collect(),
            report: serde_json::json!({}),
        })
        .await
        .unwrap();
    }
    drop(data);

    let q = ListQuery {
        conditions: vec![],
        marker: None,
        limit: 10,
    };
    let page = s
        .read()
        .await
        .unwrap()
        .aliyun_session_page(&p, &q)
        .await
        .unwrap();
    let agent = |host: &str, last_seen, applied_generation| CapturingAgent {
        host_id: host.into(),
        last_seen,
        applied_generation,
    };
    let capture = |port: &Port, agents: Vec<CapturingAgent>| SourceCapture {
        port: PortCapture {
            port_id: port.id.to_string(),
            host_id: port.host_id.clone(),
            interface: port.interface_name(),
        },
        agents,
    };
    let mut captures = page.items[0].source_captures.clone();
    for c in &mut captures {
        c.agents.sort_by(|a, b| a.host_id.cmp(&b.host_id));
    }
    captures.sort_by_key(|c| {
        sources
            .iter()
            .position(|p| p.id.to_string() == c.port.port_id)
    });
    assert_eq!(
        captures,
        [
            // By the port's host, not by the interfaces hv1 reported.
            capture(&bound, vec![agent("hv1", 10, 4)]),
            capture(&hostless, vec![]),
            capture(
                &reported,
                vec![
                    agent("hv1", 10, 4),
                    agent("hv2", 20, 5),
                    agent("hv3", 30, 6)
                ]
            ),
            capture(&nobodys, vec![]),
            capture(&by_default, vec![agent("hv4", 1 << 40, 1 << 35)]),
        ]
    );
}

async fn a_pages_tags_and_groups_are_read_by_its_resources_ids(b: &Backend) {
    let s = b.open().await;
    let other = project(s.as_ref()).await;
    let project = project(s.as_ref()).await;
    let filters: Vec<Filter> = (0..3).map(|i| filter(&project, &format!("f{i}"))).collect();
    let ids: Vec<String> = filters.iter().map(|f| f.id.to_string()).collect();
    let tag = |id: &str, key: &str| AliyunTag {
        resource_type: "filter".into(),
        resource_id: id.to_owned(),
        key: key.into(),
        value: "v".into(),
    };
    let mut tx = s.write().await.unwrap();
    for f in &filters {
        tx.put_filter(f).await.unwrap();
    }
    // Set interleaved: the answer keeps the order they were set in.
    tx.aliyun_set_tag(&project, &tag(&ids[2], "b"))
        .await
        .unwrap();
    tx.aliyun_set_tag(&project, &tag(&ids[0], "a"))
        .await
        .unwrap();
    tx.aliyun_set_tag(&project, &tag(&ids[1], "x"))
        .await
        .unwrap();
    tx.aliyun_set_tag(&project, &tag(&ids[2], "a"))
        .await
        .unwrap();
    for id in &ids[1..] {
        tx.aliyun_set_resource_group(&project, "filter", id, "rg-1")
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let mut r = s.read().await.unwrap();
    let page = [ids[2].clone(), ids[0].clone()];
    assert_eq!(
        r.aliyun_extras_of(&project, "filter", &page).await.unwrap(),
        AliyunExtras {
            tags: vec![tag(&ids[2], "b"), tag(&ids[0], "a"), tag(&ids[2], "a")],
            groups: vec![(ids[2].clone(), "rg-1".to_string())],
        }
    );
    // Another project, another resource type, no ids: nothing.
    for (p, kind, ids) in [
        (&other, "filter", &page[..]),
        (&project, "session", &page[..]),
        (&project, "filter", &[][..]),
        (&other, "filter", &ids[..]),
    ] {
        assert_eq!(
            r.aliyun_extras_of(p, kind, ids).await.unwrap(),
            AliyunExtras::default()
        );
    }
}

async fn load_balancer_lists_page_both_ways_filter_and_stay_within_the_project(b: &Backend) {
    let store = b.open().await;
    let p = project(store.as_ref()).await;
    let other = project(store.as_ref()).await;
    let mut lbs = Vec::new();
    let mut tx = store.write().await.unwrap();
    for (i, name) in ["a", "b", "c", "d"].into_iter().enumerate() {
        let mut lb = load_balancer(&p, vec![member(&format!("10.0.0.{}", i + 1), 4789, 1)]);
        lb.name = name.into();
        lb.admin_state_up = name != "c";
        tx.put_load_balancer(&lb).await.unwrap();
        lbs.push(lb);
    }
    let theirs = load_balancer(&other, vec![]);
    tx.put_load_balancer(&theirs).await.unwrap();
    tx.commit().await.unwrap();

    let q =
        |conditions: Vec<Condition<LoadBalancerField>>, marker: Option<&LoadBalancer>| ListQuery {
            conditions,
            marker: marker.map(|l| l.id.to_string()),
            limit: 2,
        };
    let names = |page: &Page<LoadBalancer>| -> Vec<String> {
        page.items.iter().map(|l| l.name.clone()).collect()
    };
    let mut r = store.read().await.unwrap();
    let first = r
        .list_load_balancers(&p, &q(vec![], None), false)
        .await
        .unwrap();
    assert_eq!(
        (names(&first), first.more),
        (vec!["a".into(), "b".into()], true)
    );
    // Each load balancer comes with its members.
    assert_eq!(first.items[0], lbs[0]);
    let next = r
        .list_load_balancers(&p, &q(vec![], Some(&lbs[1])), false)
        .await
        .unwrap();
    assert_eq!(
        (names(&next), next.more),
        (vec!["c".into(), "d".into()], false)
    );
    // Backwards: the ones just before the marker, in creation order.
    let back = r
        .list_load_balancers(&p, &q(vec![], Some(&lbs[3])), true)
        .await
        .unwrap();
    assert_eq!(
        (names(&back), back.more),
        (vec!["b".into(), "c".into()], true)
    );
    let start = r
        .list_load_balancers(&p, &q(vec![], Some(&lbs[1])), true)
        .await
        .unwrap();
    assert_eq!((names(&start), start.more), (vec!["a".into()], false));
    // Without a marker, backwards is the last page.
    let end = r
        .list_load_balancers(&p, &q(vec![], None), true)
        .await
        .unwrap();
    assert_eq!(names(&end), vec!["c".to_owned(), "d".into()]);

    let enabled = vec![Condition {
        field: LoadBalancerField::AdminStateUp,
        values: vec![Value::Bool(true)],
    }];
    let page = r
        .list_load_balancers(&p, &q(enabled.clone(), Some(&lbs[1])), false)
        .await
        .unwrap();
    assert_eq!(names(&page), vec!["d".to_owned()]);
    let by = |field, v: &str| {
        vec![Condition {
            field,
            values: vec![Value::Text(v.into())],
        }]
    };
    for (field, v, want) in [
        (LoadBalancerField::Name, "b", 1),
        (LoadBalancerField::Id, &*lbs[2].id.to_string(), 1),
        (LoadBalancerField::Description, "d", 2),
        (LoadBalancerField::VipAddress, "10.0.9.9", 2),
        (LoadBalancerField::Name, "theirs", 0),
        (LoadBalancerField::MemberAddress, "10.0.0.3", 1),
        (LoadBalancerField::MemberAddress, "10.0.0.9", 0),
    ] {
        let found = r
            .list_load_balancers(&p, &q(by(field, v), None), false)
            .await
            .unwrap();
        assert_eq!(found.items.len(), want, "{field:?} = {v}");
    }

    // Another project's id (or none) is no marker of this list.
    for marker in [theirs.id.to_string(), LoadBalancerId::new().to_string()] {
        let mut bad = q(vec![], None);
        bad.marker = Some(marker);
        assert!(matches!(
            r.list_load_balancers(&p, &bad, false).await,
            Err(StoreError::UnknownMarker(_))
        ));
    }
    let theirs_only = r
        .list_load_balancers(&other, &q(vec![], None), false)
        .await
        .unwrap();
    assert_eq!(theirs_only.items, vec![theirs]);
}
