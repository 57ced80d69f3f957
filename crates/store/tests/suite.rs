//! The store suite: what every back-end must do, run against each one available
//! (SQLite always; PostgreSQL joins when its back-end exists and `TMIRROR_TEST_DATABASE_URL` is set).

use std::sync::Arc;

use tmirror_model::*;
use tmirror_store::*;

/// A fresh SQLite store in a temporary directory (kept alive by the returned guard).
async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("t.db").display());
    (open(&url).await.expect("open sqlite"), dir)
}

async fn project(store: &dyn Store) -> ProjectId {
    let p = ProjectId::new();
    let mut tx = store.write().await.unwrap();
    tx.put_project(&p).await.unwrap();
    tx.commit().await.unwrap();
    p
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
        sources,
        target_id: target.id,
        target_type: TargetType::Eni,
        vni: Vni::new(7).unwrap(),
        packet_length: PacketLength::new(96).unwrap(),
        priority: SessionPriority::new(priority).unwrap(),
        enabled: priority % 2 == 0,
        source_type: "eni".into(),
        created_at: Timestamp(3),
        updated_at: Timestamp(3),
    }
}

#[tokio::test]
async fn every_write_transaction_bumps_the_revision_once_and_wakes_watchers() {
    let (store, _dir) = sqlite().await;
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

#[tokio::test]
async fn sessions_keep_source_order_and_constraints_back_the_rules() {
    let (store, _dir) = sqlite().await;
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
    s1.sources = vec![sources[1].id, sources[2].id];
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

#[tokio::test]
async fn lists_filter_page_and_stay_within_the_project() {
    let (store, _dir) = sqlite().await;
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

#[tokio::test]
async fn data_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("t.db").display());
    let store = open(&url).await.unwrap();
    let p = project(store.as_ref()).await;
    let f = filter(&p, "kept");
    let mut tx = store.write().await.unwrap();
    tx.put_filter(&f).await.unwrap();
    let rev = tx.commit().await.unwrap();
    store.close().await;
    let again = open(&url).await.unwrap();
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

#[tokio::test]
async fn bad_urls_say_what_is_supported() {
    let e = match open("mysql://x").await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("mysql is not a back-end"),
    };
    assert!(e.contains("sqlite:"), "{e}");
    let e = match open("sqlite:/tmp/x.db?journal=off").await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("unknown option accepted"),
    };
    assert!(e.contains("synchronous"), "{e}");
}
