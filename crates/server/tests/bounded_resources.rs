//! Bounded resources: idle and slow connections, unauthenticated bodies and a full body budget
//! cannot starve the server. Attackers connect from other loopback addresses (127.0.0.2,
//! 127.0.0.3) than the well-behaved client (127.0.0.1), as they would from other hosts. Every
//! loop is bounded in count and time; every socket is closed when the test ends.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::TestServer;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A well-formed signature that matches nothing.
const SIG: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A connection to `server` from the loopback address `from`.
async fn connect_from(from: &str, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().unwrap())?;
    socket.connect(server).await
}

/// Reads until the peer closes, or `within` passes; true if it closed.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// The status line's code of the first answer on `stream`, within `within`.
async fn status_within(stream: &mut TcpStream, within: Duration) -> Option<u16> {
    let mut got: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    while !got.windows(2).any(|w| w == b"\r\n") {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
    let line = String::from_utf8_lossy(&got);
    line.split(' ').nth(1)?.parse().ok()
}

#[tokio::test]
async fn idle_and_slowloris_connections_do_not_starve_health_or_signed_requests() {
    let server = TestServer::start_with(|c| {
        c.connections.header_read_timeout = Duration::from_secs(2);
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..1000 {
        match connect_from("127.0.0.2", server.addr).await {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect: {e}"),
        }
    }
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut s = connect_from("127.0.0.3", server.addr).await.unwrap();
        // Headers begun, never finished.
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
        slow.push(s);
    }

    // The well-behaved client is answered promptly, health and signed requests alike.
    let started = Instant::now();
    let health = reqwest::get(format!("http://{}/healthz", server.addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let api = server.client();
    api.get(&api.v3("traffic-mirror-filters")).await.ok(200);
    api.call(
        "POST",
        &api.v3("traffic-mirror-filters"),
        Some(&json!({"traffic_mirror_filter": {"name": "under-load"}})),
    )
    .await
    .ok(201);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answers took {:?}",
        started.elapsed()
    );

    // Connections over the per-address cap were closed on accept; the slow ones are closed
    // once the header-read time-out passes.
    let mut closed_idle = 0;
    for s in idle.iter_mut() {
        if closed_within(s, Duration::from_millis(1)).await {
            closed_idle += 1;
        }
    }
    assert!(
        closed_idle >= 1000 - 512,
        "only {closed_idle} of the idle connections over the cap were closed"
    );
    for s in slow.iter_mut().take(20) {
        assert!(
            closed_within(s, Duration::from_secs(6)).await,
            "a slowloris connection outlived the header-read time-out"
        );
    }
}

#[tokio::test]
async fn bodies_of_unknown_keys_are_refused_before_they_are_read() {
    // 300 unknown keys from one address: the failure bucket (tests/throttling.rs) would answer
    // the later ones itself.
    let server = TestServer::start_with(|c| {
        c.throttle.auth_failures = tmirror_server::throttle::Rate::OFF;
    })
    .await;
    let huawei = format!(
        "POST /v3/{}/vpc/traffic-mirror-filters HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         X-Sdk-Date: 20260101T000000Z\r\nAuthorization: SDK-HMAC-SHA256 Access=NOSUCHKEY, SignedHeaders=host;x-sdk-date, Signature={SIG}\r\n\
         Content-Length: 1048576\r\n\r\n",
        server.creds.project_id, server.addr
    );
    let admin = huawei.replace(
        &format!("/v3/{}/vpc/traffic-mirror-filters", server.creds.project_id),
        "/admin/v1/projects",
    );
    let aliyun = format!(
        "POST /?Action=CreateTrafficMirrorFilter HTTP/1.1\r\nHost: {}\r\n\
         Authorization: ACS3-HMAC-SHA256 Credential=NOSUCHKEY,SignedHeaders=host,Signature={SIG}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1048576\r\n\r\n",
        server.addr
    );
    for (face, head, status) in [
        ("huawei", huawei, 401),
        ("admin", admin, 401),
        ("aliyun", aliyun, 404),
    ] {
        let mut conns = Vec::new();
        for _ in 0..100 {
            let mut s = connect_from("127.0.0.2", server.addr).await.unwrap();
            s.write_all(head.as_bytes()).await.unwrap();
            // A first kilobyte of the promised megabyte; the rest never comes.
            s.write_all(&[b'x'; 1024]).await.unwrap();
            conns.push(s);
        }
        for s in conns.iter_mut() {
            assert_eq!(
                status_within(s, Duration::from_secs(5)).await,
                Some(status),
                "{face}: an unknown key is refused without waiting for its body"
            );
        }
    }
}

#[tokio::test]
async fn a_full_body_budget_answers_busy_and_frees_itself() {
    let server = TestServer::start_with(|c| {
        c.connections.body_budget_bytes = 1024 * 1024;
        c.connections.body_read_timeout = Duration::from_secs(3);
        c.connections.body_budget_wait = Duration::from_millis(300);
    })
    .await;
    // A known key (so the headers pass) promising a megabyte that never comes: it holds the
    // whole budget until its body time-out.
    let mut holder = connect_from("127.0.0.2", server.addr).await.unwrap();
    holder
        .write_all(
            format!(
                "POST /v3/{}/vpc/traffic-mirror-filters HTTP/1.1\r\nHost: {}\r\n\
                 X-Sdk-Date: 20260101T000000Z\r\nAuthorization: SDK-HMAC-SHA256 Access={}, SignedHeaders=host;x-sdk-date, Signature={SIG}\r\n\
                 Content-Length: 1048576\r\n\r\n",
                server.creds.project_id, server.addr, server.creds.access_key
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let api = server.client();
    let create = |name: &'static str| {
        let api = &api;
        async move {
            api.call(
                "POST",
                &api.v3("traffic-mirror-filters"),
                Some(&json!({"traffic_mirror_filter": {"name": name}})),
            )
            .await
        }
    };
    // Once the holder has its share, a signed create waits for the budget, then is told to
    // retry; until then (the holder's headers still on their way) it goes through.
    let started = Instant::now();
    let busy = loop {
        let answer = create("waits").await;
        match answer.status {
            503 => break answer,
            201 if started.elapsed() < Duration::from_secs(2) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            _ => {
                let mut buf = vec![0u8; 4096];
                let n = tokio::time::timeout(Duration::from_millis(100), holder.read(&mut buf))
                    .await
                    .map_or(0, |r| r.unwrap_or(0));
                panic!(
                    "expected the budget to be held: {answer:?}; holder got {:?}",
                    String::from_utf8_lossy(&buf[..n])
                )
            }
        }
    };
    assert_eq!(busy.body["error_code"], "VPC.0503", "{busy:?}");
    assert_eq!(
        status_within(&mut holder, Duration::from_secs(6)).await,
        Some(408),
        "the holder's body time-out"
    );
    create("after").await.ok(201);
}
