//! The agent's synchronisation against a real control plane: it applies the host's state,
//! follows changes within a second, reports what it applied, and resumes from the saved state
//! when no server answers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tmirror_agent::{Dataplane, SyncConfig, Syncer};
use tmirror_client::*;
use tmirror_model::agent::DesiredState;
use tmirror_server::{ServeConfig, Server};

/// Records what it is asked to apply (the test's view of the data plane).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<DesiredState>>>);

impl Dataplane for Recorder {
    fn apply(&mut self, state: &DesiredState) -> Result<(), String> {
        self.0.lock().unwrap().push(state.clone());
        Ok(())
    }
    fn counters(&self) -> serde_json::Value {
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
