//! The agent's synchronisation against a real control plane: it applies the host's state,
//! follows changes within a second, reports what it applied, and resumes from the saved state
//! when no server answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tmirror_agent::{Dataplane, SyncConfig, Syncer};
use tmirror_client::*;
use tmirror_model::agent::DesiredState;
use tmirror_server::{ServeConfig, Server};

/// Records what it is asked to apply (the test's view of the data plane), and counts the
/// status reports, one per answer of the control plane.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<DesiredState>>>, Arc<AtomicUsize>);

impl Dataplane for Recorder {
    fn apply(&mut self, state: &DesiredState) -> Result<(), String> {
        self.0.lock().unwrap().push(state.clone());
        Ok(())
    }
    fn counters(&self) -> serde_json::Value {
        self.1.fetch_add(1, Ordering::Relaxed);
        serde_json::json!({"applied": self.0.lock().unwrap().len()})
    }
    fn interfaces(&self) -> Vec<String> {
        vec!["vm1-eth0".into()]
    }
}

impl Recorder {
    fn last(&self) -> Option<DesiredState> {
        self.0.lock().unwrap().last().cloned()
    }

    fn reports(&self) -> usize {
        self.1.load(Ordering::Relaxed)
    }

    async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        ok: impl Fn(&DesiredState) -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if self.last().is_some_and(|s| ok(&s)) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "{what}: not applied within {within:?}; last: {:?}",
                self.last()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

struct Plane {
    addr: std::net::SocketAddr,
    dir: tempfile::TempDir,
    client: Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_server(dir: tempfile::TempDir, listen: &str) -> Plane {
    let config = ServeConfig {
        listen: listen.parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let server = Server::bind(&config).await.unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    let file = Credentials::load(dir.path().join("admin-credentials.json")).unwrap();
    let client = Client::new(&format!("http://{addr}"), file.credentials).unwrap();
    Plane {
        addr,
        dir,
        client,
        stop: Some(stop),
        task,
    }
}

impl Plane {
    async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        let _ = self.task.await;
        self.dir
    }

    /// Enrols `host` through the admin API, as the operator does; its agent's token.
    async fn enrol(&self, host: &str) -> String {
        AdminClient::from(self.client.clone())
            .host_create(host)
            .await
            .unwrap()
            .token
    }

    /// A port on hv1 mirrored by an enabled session; returns the session id.
    async fn mirror_something(&self) -> String {
        let c = &self.client;
        let src = c
            .port_create(&PortCreate {
                network_id: "n".into(),
                fixed_ips: Some(vec![FixedIpOption {
                    subnet_id: None,
                    ip_address: Some("10.0.0.5".into()),
                }]),
                host_id: Some("hv1".into()),
                binding_profile: Some(BindingProfileOption {
                    interface_name: Some("vm1-eth0".into()),
                    capture_side: None,
                }),
                ..Default::default()
            })
            .await
            .unwrap();
        let dst = c
            .port_create(&PortCreate {
                network_id: "n".into(),
                fixed_ips: Some(vec![FixedIpOption {
                    subnet_id: None,
                    ip_address: Some("10.0.0.9".into()),
                }]),
                ..Default::default()
            })
            .await
            .unwrap();
        let f = c
            .filter_create(&FilterCreate {
                name: "f".into(),
                description: None,
            })
            .await
            .unwrap();
        c.session_create(&SessionCreate {
            name: "s".into(),
            description: None,
            traffic_mirror_filter_id: f.id,
            traffic_mirror_sources: vec![src.id],
            traffic_mirror_target_id: dst.id,
            traffic_mirror_target_type: tmirror_model::TargetType::Eni,
            virtual_network_id: Some(5),
            packet_length: None,
            priority: 1,
            enabled: Some(true),
            source_type: None,
        })
        .await
        .unwrap()
        .id
    }
}

fn config(servers: Vec<String>, token: String, state_dir: &std::path::Path) -> SyncConfig {
    SyncConfig {
        servers,
        token,
        host_id: "hv1".into(),
        state_dir: state_dir.to_path_buf(),
        poll_wait: Duration::from_secs(20),
        max_backoff: Duration::from_millis(300),
        follow_older_after: Duration::from_secs(2),
        transport: Default::default(),
    }
}

#[tokio::test]
async fn applies_follows_reports_and_resumes_from_the_saved_state() {
    let plane = start_server(tempfile::tempdir().unwrap(), "127.0.0.1:0").await;
    let session = plane.mirror_something().await;
    let token = plane.enrol("hv1").await;
    let state_dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::default();
    let syncer = Syncer::new(
        config(
            vec![format!("http://{}", plane.addr)],
            token.clone(),
            state_dir.path(),
        ),
        recorder.clone(),
    )
    .unwrap();
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(syncer.run(async {
        let _ = agent_stopped.await;
    }));

    recorder
        .wait_for("the first state", Duration::from_secs(5), |s| {
            s.interfaces.len() == 1 && s.interfaces[0].sessions.len() == 1
        })
        .await;
    assert_eq!(
        recorder.last().unwrap().interfaces[0].sessions[0]
            .session_id
            .to_string(),
        session
    );

    // A change reaches the data plane within a second of the API's answer.
    plane
        .client
        .session_update(
            &session,
            &SessionUpdate {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let took = recorder
        .wait_for("disable", Duration::from_secs(1), |s| {
            s.interfaces[0].sessions.is_empty()
        })
        .await;
    eprintln!("disable applied {took:?} after the API answered");

    // The report shows the applied generation, to the host itself and to the operator.
    let agents = AgentClient::new(&format!("http://{}", plane.addr), &token).unwrap();
    let admin = AdminClient::from(plane.client.clone());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = agents.host("hv1").await.unwrap();
        let generation = recorder.last().unwrap().generation;
        if seen
            .as_ref()
            .is_some_and(|a| a.applied_generation == generation)
        {
            assert!(seen.unwrap().connected);
            let hosts = admin.host_list().await.unwrap();
            let hv1 = hosts.iter().find(|h| h.host_id == "hv1").unwrap();
            assert_eq!(
                hv1.agent.as_ref().map(|a| a.applied_generation),
                Some(generation),
                "{hosts:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no report of the applied generation: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    plane
        .client
        .session_update(
            &session,
            &SessionUpdate {
                enabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    recorder
        .wait_for("enable", Duration::from_secs(1), |s| {
            s.interfaces[0].sessions.len() == 1
        })
        .await;
    let _ = stop_agent.send(());
    agent.await.unwrap();

    // The server goes away; a restarted agent mirrors from the saved state at once, and keeps
    // trying the servers it was given.
    let addr = plane.addr;
    let dir = plane.stop().await;
    let restarted = Recorder::default();
    let syncer = Syncer::new(
        config(
            vec![format!("http://{addr}")],
            token.clone(),
            state_dir.path(),
        ),
        restarted.clone(),
    )
    .unwrap();
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(syncer.run(async {
        let _ = agent_stopped.await;
    }));
    restarted
        .wait_for("the saved state", Duration::from_secs(1), |s| {
            s.interfaces[0].sessions.len() == 1
        })
        .await;
    // The server comes back on the same address and data: the agent resyncs with it.
    let plane = start_server(dir, &addr.to_string()).await;
    plane
        .client
        .session_update(
            &session,
            &SessionUpdate {
                virtual_network_id: Some(6),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    restarted
        .wait_for(
            "a change after the server returned",
            Duration::from_secs(5),
            |s| {
                s.interfaces[0]
                    .sessions
                    .first()
                    .is_some_and(|x| x.vni.get() == 6)
            },
        )
        .await;
    let _ = stop_agent.send(());
    agent.await.unwrap();
    plane.stop().await;
}

#[tokio::test]
async fn a_second_server_takes_over_when_the_first_does_not_answer() {
    let plane = start_server(tempfile::tempdir().unwrap(), "127.0.0.1:0").await;
    plane.mirror_something().await;
    let token = plane.enrol("hv1").await;
    // Nothing listens on the first address.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::default();
    let servers = vec![format!("http://{dead}"), format!("http://{}", plane.addr)];
    let syncer = Syncer::new(config(servers, token, state_dir.path()), recorder.clone()).unwrap();
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(syncer.run(async {
        let _ = agent_stopped.await;
    }));
    recorder
        .wait_for(
            "state from the second server",
            Duration::from_secs(5),
            |s| s.interfaces.len() == 1,
        )
        .await;
    let _ = stop_agent.send(());
    agent.await.unwrap();
    assert!(state_dir.path().join("desired-state.json").exists());
    plane.stop().await;
}

/// The session's VNI in the last state applied, if it has one.
fn vni(recorder: &Recorder) -> Option<u32> {
    let last = recorder.last()?;
    Some(last.interfaces.first()?.sessions.first()?.vni.get())
}

/// Copies the files of the data directory `from` into `to` (a backup, or its restore).
fn copy_files(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

async fn set_vni(plane: &Plane, session: &str, vni: u32) {
    plane
        .client
        .session_update(
            session,
            &SessionUpdate {
                virtual_network_id: Some(vni),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

/// A control plane restored from a backup answers with documents older than the one the
/// agent applied. The agent holds its state for a while (a lagging server catches up), without
/// polling in a loop meanwhile (the server answers at once while the hashes differ), then
/// follows the restored control plane, and its changes after.
#[tokio::test]
async fn a_control_plane_restored_from_a_backup_is_followed_without_polling_in_a_loop() {
    let plane = start_server(tempfile::tempdir().unwrap(), "127.0.0.1:0").await;
    let addr = plane.addr;
    let session = plane.mirror_something().await;
    let token = plane.enrol("hv1").await;
    let state_dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::default();
    // Short polls: a stopping server waits for the polls it holds.
    let mut config = config(vec![format!("http://{addr}")], token, state_dir.path());
    config.poll_wait = Duration::from_secs(1);
    let syncer = Syncer::new(config, recorder.clone()).unwrap();
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(syncer.run(async {
        let _ = agent_stopped.await;
    }));
    recorder
        .wait_for("the first state", Duration::from_secs(5), |_| {
            vni(&recorder) == Some(5)
        })
        .await;

    // The operator's backup, taken with the server stopped; then changes after it.
    let dir = plane.stop().await;
    let backup = tempfile::tempdir().unwrap();
    copy_files(dir.path(), backup.path());
    let plane = start_server(dir, &addr.to_string()).await;
    set_vni(&plane, &session, 6).await;
    set_vni(&plane, &session, 7).await;
    recorder
        .wait_for(
            "the change after the backup",
            Duration::from_secs(5),
            |_| vni(&recorder) == Some(7),
        )
        .await;
    let newest = recorder.last().unwrap().generation;

    // The backup restored: its revision is below the generation the agent applied.
    let dir = plane.stop().await;
    copy_files(backup.path(), dir.path());
    let restored_at = Instant::now();
    let reports = recorder.reports();
    let plane = start_server(dir, &addr.to_string()).await;
    recorder
        .wait_for("the restored state", Duration::from_secs(15), |_| {
            vni(&recorder) == Some(5)
        })
        .await;
    let held = restored_at.elapsed();
    let polls = recorder.reports() - reports;
    let restored = recorder.last().unwrap().generation;
    assert!(restored < newest, "{restored} < {newest}");
    // Held for `follow_older_after` (2 s in `config`), at a poll per pause (200 ms, then
    // 300), not at a poll per round trip.
    assert!(held >= Duration::from_secs(2), "followed after {held:?}");
    assert!(
        polls <= 20,
        "{polls} polls while the older state was held back"
    );
    eprintln!("restored state followed after {held:?}, {polls} polls meanwhile");

    // Settled on the restored control plane: its reports are taken, its changes followed.
    set_vni(&plane, &session, 8).await;
    recorder
        .wait_for(
            "a change on the restored plane",
            Duration::from_secs(1),
            |_| vni(&recorder) == Some(8),
        )
        .await;
    let current = recorder.last().unwrap().generation;
    let admin = AdminClient::from(plane.client.clone());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let hosts = admin.host_list().await.unwrap();
        let applied = hosts
            .iter()
            .find(|h| h.host_id == "hv1")
            .and_then(|h| h.agent.as_ref())
            .map(|a| a.applied_generation);
        if applied == Some(current) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reports not taken: {applied:?}, applied {current}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_agent.send(());
    agent.await.unwrap();
    plane.stop().await;
}

/// A data plane that fails to apply a state whose session has VNI 6, and records every
/// state it is asked to apply.
#[derive(Clone, Default)]
struct FailsOnSix(Arc<Mutex<Vec<DesiredState>>>);

impl Dataplane for FailsOnSix {
    fn apply(&mut self, state: &DesiredState) -> Result<(), String> {
        self.0.lock().unwrap().push(state.clone());
        let six = state
            .interfaces
            .iter()
            .flat_map(|i| &i.sessions)
            .any(|s| s.vni.get() == 6);
        if six {
            Err("could not start a capture thread".into())
        } else {
            Ok(())
        }
    }
    fn counters(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    fn interfaces(&self) -> Vec<String> {
        vec!["vm1-eth0".into()]
    }
}

impl FailsOnSix {
    /// Waits until a state with the session's VNI `vni` is asked for after `after` asks.
    async fn asked(&self, vni: u32, after: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            {
                let asked = self.0.lock().unwrap();
                let found = asked.iter().enumerate().skip(after).find(|(_, s)| {
                    s.interfaces
                        .iter()
                        .flat_map(|i| &i.sessions)
                        .any(|x| x.vni.get() == vni)
                });
                if let Some((i, _)) = found {
                    return i + 1;
                }
            }
            assert!(
                Instant::now() < deadline,
                "VNI {vni} never asked for after ask {after}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A state the data plane failed to apply may have been applied in part: the next state is
/// applied whatever it is, also one whose contents are those of the state in effect before
/// (the operator undoing the change), which the server would otherwise not even send.
#[tokio::test]
async fn after_a_failed_apply_the_next_state_is_applied_even_if_unchanged() {
    let plane = start_server(tempfile::tempdir().unwrap(), "127.0.0.1:0").await;
    let session = plane.mirror_something().await;
    let token = plane.enrol("hv1").await;
    let state_dir = tempfile::tempdir().unwrap();
    let dataplane = FailsOnSix::default();
    // Polls of 20 s: the undone state must be asked for at once, not when a poll runs out.
    let config = config(
        vec![format!("http://{}", plane.addr)],
        token,
        state_dir.path(),
    );
    let syncer = Syncer::new(config, dataplane.clone()).unwrap();
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(syncer.run(async {
        let _ = agent_stopped.await;
    }));
    let first = dataplane.asked(5, 0).await;
    set_vni(&plane, &session, 6).await;
    let failed = dataplane.asked(6, first).await;
    // Undone: the server's state is again the one applied before the failure.
    set_vni(&plane, &session, 5).await;
    dataplane.asked(5, failed).await;
    let _ = stop_agent.send(());
    agent.await.unwrap();
    plane.stop().await;
}
