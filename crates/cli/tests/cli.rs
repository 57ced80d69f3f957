//! End-to-end tests of the `tmirror` resource commands: each test starts the real
//! `tmirror serve` on a free port with a fresh data directory, then drives the CLI binary
//! against it (and, for the signature failure, the client crate directly).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tmirror");

/// A running `tmirror serve`; killed on drop, also when a test fails half-way.
struct Server {
    child: Child,
    dir: tempfile::TempDir,
    endpoint: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            eprintln!("--- tmirror serve log ---\n{log}");
        }
    }
}

/// A port nothing listens on right now: bind port 0, read the port, release it.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /healthz` over a bare socket; true on a 200.
fn healthy(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--listen", &addr, "--data-dir"])
            .arg(dir.path())
            .env("TMIRROR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            dir,
            endpoint: format!("http://{addr}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(healthy(&addr) && server.credentials_path().exists()) {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("tmirror serve exited early with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "tmirror serve did not become healthy"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    fn credentials_path(&self) -> PathBuf {
        self.dir.path().join("admin-credentials.json")
    }

    /// Runs the CLI with the server's data directory and a clean environment.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("TMIRROR_DATA_DIR", self.dir.path())
            .env_remove("TMIRROR_CREDENTIALS")
            .env_remove("TMIRROR_ENDPOINT")
            .output()
            .unwrap()
    }

    /// Runs the CLI, expects success, answers stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tmirror {args:?} failed with {}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs the CLI with `--output json`, expects success, parses stdout.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Runs the CLI, expects exit code `code`, answers stderr.
    fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "tmirror {args:?}: {stderr}");
        stderr
    }

    fn port(&self, ip: &str) -> String {
        id(&self.json(&["port", "create", "--network-id", "net-1", "--ip", ip]))
    }
}

/// A signed `GET` written by hand over a bare socket, to see the server's body unmediated by
/// the client crate.
fn raw_get(srv: &Server, path: &str) -> Value {
    let file = tmirror_client::Credentials::load(srv.credentials_path()).unwrap();
    let c = file.credentials;
    let host = srv.endpoint.trim_start_matches("http://").to_owned();
    let date = tmirror_sign::huawei::format_sdk_date(time::OffsetDateTime::now_utc());
    let headers = vec![
        ("content-type", "application/json".to_owned()),
        ("host", host.clone()),
        ("x-project-id", c.project_id.clone()),
        ("x-sdk-date", date.clone()),
    ];
    let req = tmirror_sign::Request {
        method: "GET",
        path,
        query: "",
        headers: &headers,
        body: b"",
    };
    let names = ["content-type", "host", "x-project-id", "x-sdk-date"];
    let auth =
        tmirror_sign::huawei::sign(&req, &c.access_key, &c.secret_key, &date, &names).unwrap();
    let mut text = format!("GET {path} HTTP/1.0\r\nAuthorization: {auth}\r\n");
    for (k, v) in &headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    let mut s = TcpStream::connect(&host).unwrap();
    s.write_all(text.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    serde_json::from_str(body).unwrap()
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn resources_from_create_to_delete() {
    let srv = Server::start();

    // Ports, one with the binding attributes the agent uses.
    let p = srv.json(&[
        "port",
        "create",
        "--network-id",
        "net-1",
        "--ip",
        "10.0.0.5",
        "--name",
        "web-1",
        "--host-id",
        "host-a",
        "--interface-name",
        "veth0",
        "--capture-side",
        "guest",
    ]);
    assert_eq!(p["binding:host_id"], "host-a");
    assert_eq!(p["binding:profile"]["interface_name"], "veth0");
    assert_eq!(p["binding:profile"]["capture_side"], "guest");
    assert_eq!(p["fixed_ips"][0]["ip_address"], "10.0.0.5");
    let p1 = id(&p);
    let p2 = srv.port("10.0.0.6");
    let p3 = srv.port("10.0.0.7");
    let target = srv.port("10.0.0.100");

    // Changing one profile field keeps the other.
    let p = srv.json(&["port", "update", &p1, "--capture-side", "host"]);
    assert_eq!(p["binding:profile"]["interface_name"], "veth0");
    assert_eq!(p["binding:profile"]["capture_side"], "host");
    let table = srv.ok(&["port", "list"]);
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains(&p1) && table.contains("veth0"), "{table}");
    let by_ip = srv.json(&["port", "list", "--ip", "10.0.0.6"]);
    assert_eq!(by_ip["ports"].as_array().unwrap().len(), 1, "{by_ip}");
    assert_eq!(by_ip["ports"][0]["id"], p2.as_str());

    // A filter with one rule; lower-case input comes back as the server spells it.
    let f = id(&srv.json(&["filter", "create", "--name", "web", "--description", "http"]));
    let r = srv.json(&[
        "rule",
        "create",
        "--filter",
        &f,
        "--direction",
        "ingress",
        "--protocol",
        "tcp",
        "--ethertype",
        "ipv4",
        "--action",
        "accept",
        "--priority",
        "1",
        "--source-cidr",
        "10.0.0.0/24",
        "--destination-port-range",
        "80-80",
    ]);
    assert_eq!(r["ethertype"], "IPv4");
    assert_eq!(r["protocol"], "tcp");
    assert_eq!(r["destination_port_range"], "80-80");
    let rule = id(&r);
    let shown = srv.json(&["filter", "show", &f]);
    assert_eq!(shown["ingress_rules"][0]["id"], rule.as_str());
    let text = srv.ok(&["filter", "show", &f]);
    assert!(
        text.contains("rules:") && text.contains("10.0.0.0/24"),
        "{text}"
    );
    let rules = srv.json(&["rule", "list", "--filter", &f, "--direction", "ingress"]);
    assert_eq!(
        rules["traffic_mirror_filter_rules"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Protocols without ports clear the ranges.
    let r = srv.json(&["rule", "update", &rule, "--protocol", "icmp"]);
    assert_eq!(r["protocol"], "icmp");
    assert!(r.get("destination_port_range").is_none(), "{r}");

    // A session.
    let s = srv.json(&[
        "session",
        "create",
        "--name",
        "s1",
        "--filter",
        &f,
        "--source",
        &p1,
        "--source",
        &p2,
        "--target",
        &target,
        "--vni",
        "7",
        "--priority",
        "1",
        "--enabled",
    ]);
    assert_eq!(
        strings(&s["traffic_mirror_sources"]),
        vec![p1.clone(), p2.clone()]
    );
    assert_eq!(s["virtual_network_id"], 7);
    assert_eq!(s["packet_length"], 96);
    assert_eq!(s["enabled"], true);
    assert_eq!(s["traffic_mirror_target_type"], "eni");
    let sid = id(&s);

    let text = srv.ok(&["session", "show", &sid]);
    assert!(
        text.contains("s1") && text.contains(&format!("{p1},{p2}")),
        "{text}"
    );
    assert_eq!(srv.json(&["session", "show", &sid]), s);

    // --output json is the server's own body: the resource for show, the list body for list.
    let pid = srv.json(&["port", "show", &p1])["project_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let raw = raw_get(
        &srv,
        &format!("/v3/{pid}/vpc/traffic-mirror-sessions/{sid}"),
    );
    assert_eq!(
        srv.json(&["session", "show", &sid]),
        raw["traffic_mirror_session"]
    );
    let raw = raw_get(&srv, &format!("/v3/{pid}/vpc/traffic-mirror-filters/{f}"));
    assert_eq!(
        srv.json(&["filter", "show", &f]),
        raw["traffic_mirror_filter"]
    );
    let raw = raw_get(&srv, &format!("/v1/{pid}/ports"));
    assert_eq!(srv.json(&["port", "list"]), raw);

    let table = srv.ok(&["session", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[0].starts_with("ID") && lines[1].starts_with(&sid),
        "{table}"
    );

    // JSON lists are the API's body; the flag may also come before the resource.
    let list = srv.json(&["session", "list"]);
    assert_eq!(list["traffic_mirror_sessions"][0], s);
    assert_eq!(list["page_info"]["current_count"], 1);
    assert!(list["request_id"].is_string());
    let out = srv.ok(&["--output", "json", "session", "list", "--priority", "1"]);
    let early: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(early["traffic_mirror_sessions"][0]["id"], sid.as_str());
    let none = srv.json(&["session", "list", "--priority", "2"]);
    assert_eq!(none["traffic_mirror_sessions"], serde_json::json!([]));

    let s = srv.json(&[
        "session",
        "update",
        &sid,
        "--enabled=false",
        "--packet-length",
        "128",
    ]);
    assert_eq!(s["enabled"], false);
    assert_eq!(s["packet_length"], 128);
    assert_eq!(s["virtual_network_id"], 7);

    // Sources keep their order; a session may be left with none.
    let s = srv.json(&["session", "add-sources", &sid, "--source", &p3]);
    assert_eq!(
        strings(&s["traffic_mirror_sources"]),
        vec![p1.clone(), p2.clone(), p3.clone()]
    );
    let s = srv.json(&[
        "session",
        "remove-sources",
        &sid,
        "--source",
        &p1,
        "--source",
        &p2,
    ]);
    assert_eq!(strings(&s["traffic_mirror_sources"]), vec![p3.clone()]);
    let s = srv.json(&["session", "remove-sources", &sid, "--source", &p3]);
    assert!(strings(&s["traffic_mirror_sources"]).is_empty());

    // Delete everything; the table output says what went.
    assert_eq!(
        srv.ok(&["session", "delete", &sid]),
        format!("deleted session {sid}\n")
    );
    srv.ok(&["rule", "delete", &rule]);
    srv.ok(&["filter", "delete", &f]);
    srv.ok(&["port", "delete", &p1, &p2, &p3, &target]);
    let err = srv.fails(1, &["session", "show", &sid]);
    assert!(err.contains("VPC.1701"), "{err}");
    assert_eq!(srv.json(&["port", "list"])["ports"], serde_json::json!([]));
    assert_eq!(
        srv.json(&["filter", "list"])["traffic_mirror_filters"],
        serde_json::json!([])
    );
}

#[test]
fn api_errors_exit_1_with_message_code_request_id_and_hint() {
    let srv = Server::start();
    let f = id(&srv.json(&["filter", "create", "--name", "f"]));
    let src = srv.port("10.0.0.1");
    let dst = srv.port("10.0.0.2");
    let create = |name: &str| {
        vec![
            "session".to_owned(),
            "create".into(),
            "--name".into(),
            name.into(),
            "--filter".into(),
            f.clone(),
            "--source".into(),
            src.clone(),
            "--target".into(),
            dst.clone(),
            "--priority".into(),
            "5".into(),
        ]
    };
    let first = create("a");
    srv.ok(&first.iter().map(String::as_str).collect::<Vec<_>>());

    let second = create("b");
    let err = srv.fails(1, &second.iter().map(String::as_str).collect::<Vec<_>>());
    let first_line = err.lines().next().unwrap();
    assert!(first_line.starts_with("tmirror: "), "{err}");
    assert!(first_line.contains("(HTTP 409 VPC.1710, request "), "{err}");
    assert!(err.contains("hint: "), "{err}");
    // Nothing was created by the refused request.
    assert_eq!(
        srv.json(&["session", "list"])["page_info"]["current_count"],
        1
    );

    let err = srv.fails(
        1,
        &["filter", "show", "00000000-0000-4000-8000-000000000000"],
    );
    assert!(err.contains("HTTP 404 VPC.1702"), "{err}");
    assert!(err.contains("hint: `tmirror filter list`"), "{err}");

    let err = srv.fails(1, &["port", "delete", &src]);
    assert!(err.contains("HTTP 409 VPC.1711"), "{err}");

    let err = srv.fails(
        1,
        &[
            "session",
            "add-sources",
            "00000000-0000-4000-8000-000000000000",
            "--source",
            &src,
        ],
    );
    assert!(err.contains("VPC.1701"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let srv = Server::start();
    // Missing required flag, bad enumeration value, unknown flag: clap's own errors.
    srv.fails(2, &["session", "create", "--name", "s"]);
    let err = srv.fails(
        2,
        &[
            "rule",
            "create",
            "--filter",
            "f",
            "--direction",
            "sideways",
            "--protocol",
            "tcp",
            "--ethertype",
            "IPv4",
            "--action",
            "accept",
            "--priority",
            "1",
        ],
    );
    assert!(err.contains("direction must be ingress or egress"), "{err}");
    srv.fails(2, &["filter", "list", "--colour"]);
    // An update that changes nothing makes no request.
    let err = srv.fails(
        2,
        &["filter", "update", "00000000-0000-4000-8000-000000000000"],
    );
    assert!(err.contains("nothing to update"), "{err}");
    // Client options before `serve` would be silently ignored, so they are refused.
    srv.fails(2, &["--output", "json", "serve"]);
}

#[test]
fn paging_with_limit_marker_and_all() {
    let srv = Server::start();
    let ids: Vec<String> = (0..5)
        .map(|i| id(&srv.json(&["filter", "create", "--name", &format!("f{i}")])))
        .collect();

    let page = srv.json(&["filter", "list", "--limit", "2"]);
    let next = page["page_info"]["next_marker"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(next, ids[1]);
    let page2 = srv.json(&["filter", "list", "--limit", "2", "--marker", &next]);
    assert_eq!(page2["traffic_mirror_filters"][0]["id"], ids[2].as_str());

    let out = srv.run(&["filter", "list", "--limit", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("--marker {next}")), "{stderr}");

    let all = srv.json(&["filter", "list", "--limit", "2", "--all"]);
    let got: Vec<&str> = all["traffic_mirror_filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(all["page_info"]["current_count"], 5);
    assert!(all["page_info"].get("next_marker").is_none());

    let two = srv.json(&["filter", "list", "--name", "f1", "--name", "f3"]);
    assert_eq!(two["page_info"]["current_count"], 2);

    // Ports have no page_info; --all still walks every page.
    for i in 0..3 {
        srv.port(&format!("10.1.0.{i}"));
    }
    let ports = srv.json(&["port", "list", "--limit", "2", "--all"]);
    assert_eq!(ports["ports"].as_array().unwrap().len(), 3);
    assert!(ports.get("page_info").is_none());
}

#[test]
fn unreachable_server_and_missing_credentials_give_hints() {
    let srv = Server::start();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let err = srv.fails(1, &["--endpoint", &closed, "filter", "list"]);
    assert!(err.contains(&format!("cannot reach {closed}")), "{err}");
    assert!(
        err.contains(&format!("is `tmirror serve` running at {closed}?")),
        "{err}"
    );

    let missing = srv.dir.path().join("nope.json");
    let err = srv.fails(
        1,
        &["filter", "list", "--credentials", missing.to_str().unwrap()],
    );
    assert!(err.contains("nope.json") && err.contains("hint: "), "{err}");
}

/// A credentials file like the server's, with another secret.
fn write_wrong_secret(from: &Path, to: &Path) {
    let mut file: Value = serde_json::from_slice(&std::fs::read(from).unwrap()).unwrap();
    file["secret_key"] = Value::String("not-the-secret".into());
    std::fs::write(to, serde_json::to_vec(&file).unwrap()).unwrap();
}

#[test]
fn wrong_secret_is_401_apigw_0301() {
    let srv = Server::start();

    // Through the client crate.
    let file = tmirror_client::Credentials::load(srv.credentials_path()).unwrap();
    assert_eq!(file.endpoint.as_deref(), Some(srv.endpoint.as_str()));
    let mut credentials = file.credentials;
    credentials.secret_key.push('x');
    let client = tmirror_client::Client::new(&srv.endpoint, credentials).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = runtime
        .block_on(client.filter_list(&tmirror_client::ListOptions::new()))
        .unwrap_err();
    let api = err
        .api()
        .unwrap_or_else(|| panic!("not an API error: {err}"));
    assert_eq!(api.status, 401);
    assert_eq!(api.error_code, "APIGW.0301");
    assert!(api.error_msg.contains("signature"), "{api}");
    assert!(api.request_id.is_some());

    // Through the CLI: the hint points at the credentials file.
    let bad = srv.dir.path().join("bad-credentials.json");
    write_wrong_secret(&srv.credentials_path(), &bad);
    let err = srv.fails(1, &["port", "list", "--credentials", bad.to_str().unwrap()]);
    assert!(err.contains("HTTP 401 APIGW.0301"), "{err}");
    assert!(err.contains("hint: check the credentials file"), "{err}");
}

#[test]
fn client_signs_queries_the_server_accepts() {
    // Repeated keys, characters that need encoding, the v1 fixed_ips filter with its `=`:
    // every one must reach the server with a signature it verifies.
    let srv = Server::start();
    let file = tmirror_client::Credentials::load(srv.credentials_path()).unwrap();
    let client = tmirror_client::Client::new(&srv.endpoint, file.credentials).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let f = client
            .filter_create(&tmirror_client::FilterCreate {
                name: "a.b_c-é".into(),
                description: Some("spaces & symbols + = / ? 100%".into()),
            })
            .await
            .unwrap();
        let opts = tmirror_client::ListOptions::new()
            .filter("name", "a.b_c-é")
            .filter("name", "other")
            .filter("description", "spaces & symbols + = / ? 100%");
        let page = client.filter_list(&opts).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].id, f.id);

        let p = client
            .port_create(&tmirror_client::PortCreate {
                network_id: "n".into(),
                fixed_ips: Some(vec![tmirror_client::FixedIpOption {
                    subnet_id: None,
                    ip_address: Some("10.9.0.1".into()),
                }]),
                ..Default::default()
            })
            .await
            .unwrap();
        let opts = tmirror_client::ListOptions::new().filter("fixed_ips", "ip_address=10.9.0.1");
        let ports = client.port_list(&opts).await.unwrap();
        assert_eq!(ports.items.len(), 1);
        assert_eq!(ports.items[0].id, p.id);
        // An id with characters that need encoding stays one path segment: a plain 404.
        let err = client.session_show("a/b c").await.unwrap_err();
        assert_eq!(err.status(), Some(404), "{err}");
    });
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

/// The operator makes a tenant with `tmirror admin`: a project, a member key written with
/// `--output json` to a file that the ordinary `--credentials` option then uses as it is; key
/// listings never show a secret; a disabled key stops working; the project is deleted only
/// once empty.
#[test]
fn admin_makes_a_tenant_whose_key_file_the_cli_uses_as_it_is() {
    let srv = Server::start();
    let operator_project = srv.json(&["filter", "list"]);
    assert_eq!(
        operator_project["traffic_mirror_filters"],
        Value::Array(vec![])
    );

    // A project.
    let created = srv.json(&["admin", "project", "create", "--name", "acme"]);
    let project = id(&created);
    assert_eq!(created["name"], "acme");
    let table = srv.ok(&["admin", "project", "list"]);
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.contains(&project) && table.contains("acme"),
        "{table}"
    );
    let shown = srv.json(&["admin", "project", "show", &project]);
    assert_eq!(shown["usage"]["credentials"], 0);

    // A member key as a credentials file: exactly the shape of admin-credentials.json.
    let key = srv.json(&[
        "admin",
        "credential",
        "create",
        "--project",
        &project,
        "--role",
        "member",
    ]);
    assert_eq!(
        keys(&key),
        ["access_key", "endpoint", "project_id", "secret_key"]
    );
    let server_file: Value =
        serde_json::from_slice(&std::fs::read(srv.credentials_path()).unwrap()).unwrap();
    assert_eq!(
        keys(&key),
        keys(&server_file),
        "the shape of the server's file"
    );
    assert_eq!(key["project_id"], project.as_str());
    assert_eq!(key["endpoint"], srv.endpoint.as_str());
    let secret = key["secret_key"].as_str().unwrap().to_owned();
    let access_key = key["access_key"].as_str().unwrap().to_owned();
    let file = srv.dir.path().join("acme.json");
    std::fs::write(&file, key.to_string()).unwrap();
    let file = file.to_str().unwrap();

    // The CLI's ordinary credential option: the filter is made in the tenant's project.
    let f = srv.json(&[
        "filter",
        "create",
        "--name",
        "tenant-f",
        "--credentials",
        file,
    ]);
    assert_eq!(f["project_id"], project.as_str(), "{f}");
    let theirs = srv.json(&["filter", "list", "--credentials-file", file]);
    assert_eq!(theirs["traffic_mirror_filters"][0]["id"], id(&f).as_str());
    let ours = srv.json(&["filter", "list"]);
    assert_eq!(
        ours["traffic_mirror_filters"],
        Value::Array(vec![]),
        "not the operator's"
    );
    // A member key manages nothing of the admin API.
    let err = srv.fails(1, &["admin", "project", "list", "--credentials", file]);
    assert!(err.contains("HTTP 403 Forbidden"), "{err}");
    assert!(err.contains("hint: "), "{err}");

    // Listed without the secret, as a table and as JSON.
    let reader = srv.ok(&[
        "admin",
        "credential",
        "create",
        "--project",
        &project,
        "--role",
        "reader",
    ]);
    assert!(reader.contains("secret_key"), "shown this once: {reader}");
    let table = srv.ok(&["admin", "credential", "list", "--project", &project]);
    assert!(table.starts_with("ACCESS_KEY "), "{table}");
    assert!(
        table.contains(&access_key) && table.contains("member"),
        "{table}"
    );
    assert!(table.contains("reader"), "{table}");
    assert!(!table.contains(&secret), "{table}");
    let listed = srv.json(&["admin", "credential", "list", "--project", &project]);
    let all = listed["credentials"].as_array().unwrap();
    assert_eq!(all.len(), 2, "{listed}");
    for c in all {
        assert!(c.get("secret_key").is_none(), "{c}");
    }
    assert!(!listed.to_string().contains(&secret));
    let err = srv.fails(
        2,
        &[
            "admin",
            "credential",
            "create",
            "--project",
            &project,
            "--role",
            "root",
        ],
    );
    assert!(err.contains("root"), "{err}");

    // Disabled: refused at once; enabled: works again.
    let off = srv.json(&["admin", "credential", "disable", &access_key]);
    assert_eq!(off["enabled"], false);
    assert!(off.get("secret_key").is_none(), "{off}");
    let err = srv.fails(1, &["filter", "list", "--credentials", file]);
    assert!(err.contains("HTTP 401"), "{err}");
    srv.ok(&["admin", "credential", "enable", &access_key]);
    srv.ok(&["filter", "list", "--credentials", file]);

    // The project goes only once it holds nothing.
    let err = srv.fails(1, &["admin", "project", "delete", &project]);
    assert!(err.contains("HTTP 409 Conflict"), "{err}");
    assert_eq!(
        srv.json(&["admin", "project", "show", &project])["usage"]["filters"],
        1
    );
    srv.ok(&["filter", "delete", &id(&f), "--credentials", file]);
    for c in all {
        let k = c["access_key"].as_str().unwrap();
        let out = srv.ok(&["admin", "credential", "delete", k]);
        assert!(out.contains(k), "{out}");
    }
    let err = srv.fails(1, &["filter", "list", "--credentials", file]);
    assert!(err.contains("HTTP 401"), "deleted: {err}");
    srv.ok(&["admin", "project", "delete", &project]);
    let err = srv.fails(1, &["admin", "project", "show", &project]);
    assert!(err.contains("HTTP 404 NotFound"), "{err}");
}

/// `tmirror admin host create NAME --output json` prints that host's credential file and
/// nothing else; the token is never listed or shown again.
#[test]
fn admin_host_create_prints_the_hosts_credential_file() {
    let srv = Server::start();
    let host = srv.json(&["admin", "host", "create", "hv-1"]);
    assert_eq!(keys(&host), ["endpoint", "host_id", "token"]);
    assert_eq!(host["host_id"], "hv-1");
    assert_eq!(host["endpoint"], srv.endpoint.as_str());
    let token = host["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("tmh_") && token.len() > 40, "{token}");

    let table = srv.ok(&["admin", "host", "list"]);
    assert!(
        table.contains("hv-1") && table.contains("never seen"),
        "{table}"
    );
    assert!(!table.contains(&token), "{table}");
    let shown = srv.json(&["admin", "host", "show", "hv-1"]);
    assert!(!shown.to_string().contains(&token), "{shown}");

    // Rotated: a new file, with a new token.
    let rotated = srv.json(&["admin", "host", "rotate", "hv-1"]);
    assert_eq!(keys(&rotated), ["endpoint", "host_id", "token"]);
    assert_ne!(rotated["token"], token.as_str());
    let err = srv.fails(1, &["admin", "host", "create", "hv-1"]);
    assert!(err.contains("HTTP 409 Conflict"), "{err}");
    srv.ok(&["admin", "host", "delete", "hv-1"]);
    let err = srv.fails(1, &["admin", "host", "show", "hv-1"]);
    assert!(err.contains("HTTP 404 NotFound"), "{err}");
}

#[test]
fn admin_eip_pools_put_list_and_delete() {
    let srv = Server::start();
    let pool = srv.json(&[
        "admin",
        "eip-pool",
        "put",
        "5_bgp",
        "--cidr",
        "198.51.100.0/24",
        "--host",
        "gw-1",
        "--interface",
        "eth-ext",
    ]);
    assert_eq!(pool["id"], "5_bgp");
    assert_eq!(pool["cidrs"], serde_json::json!(["198.51.100.0/24"]));
    assert_eq!(pool["host_id"], "gw-1");
    assert_eq!(pool["interface_name"], "eth-ext");
    let table = srv.ok(&["admin", "eip-pool", "list"]);
    assert!(
        table.contains("5_bgp") && table.contains("eth-ext"),
        "{table}"
    );
    // The binding names both the host and the interface, or neither.
    let usage = srv.fails(
        2,
        &[
            "admin",
            "eip-pool",
            "put",
            "x",
            "--cidr",
            "203.0.113.0/24",
            "--host",
            "gw-1",
        ],
    );
    assert!(usage.contains("--interface"), "{usage}");
    let err = srv.fails(
        1,
        &[
            "admin",
            "eip-pool",
            "put",
            "x",
            "--cidr",
            "198.51.100.128/25",
        ],
    );
    assert!(err.contains("HTTP 409 Conflict"), "{err}");
    srv.ok(&["admin", "eip-pool", "delete", "5_bgp"]);
    let all = srv.json(&["admin", "eip-pool", "list"]);
    assert_eq!(all["eip_pools"], serde_json::json!([]));
    let err = srv.fails(1, &["admin", "eip-pool", "delete", "5_bgp"]);
    assert!(err.contains("HTTP 404 NotFound"), "{err}");
}

#[test]
fn eips_create_show_list_associate_and_delete() {
    let srv = Server::start();
    srv.json(&[
        "admin",
        "eip-pool",
        "put",
        "5_bgp",
        "--cidr",
        "198.51.100.0/24",
    ]);
    let first = srv.json(&["eip", "create", "--pool", "5_bgp", "--name", "web"]);
    assert_eq!(
        first["public_ip_address"], "198.51.100.1",
        "the first usable"
    );
    assert_eq!(first["type"], "5_bgp");
    assert_eq!(first["status"], "DOWN");
    assert_eq!(first["alias"], "web");
    let id = first["id"].as_str().unwrap().to_owned();
    let chosen = srv.json(&[
        "eip",
        "create",
        "--pool",
        "5_bgp",
        "--ip-address",
        "198.51.100.9",
        "--bandwidth-size",
        "20",
    ]);
    assert_eq!(chosen["public_ip_address"], "198.51.100.9");
    assert_eq!(chosen["bandwidth_size"], 20);
    let table = srv.ok(&["eip", "show", &id]);
    assert!(
        table.contains("198.51.100.1") && table.contains("DOWN"),
        "{table}"
    );
    // An address outside the pool, a pool that does not exist: the server's errors.
    let err = srv.fails(
        1,
        &[
            "eip",
            "create",
            "--pool",
            "5_bgp",
            "--ip-address",
            "203.0.113.1",
        ],
    );
    assert!(err.contains("HTTP 400"), "{err}");
    let err = srv.fails(1, &["eip", "create", "--pool", "nope"]);
    assert!(err.contains("HTTP 400"), "{err}");

    // Listed in allocation order; associated with a port and dissociated again.
    let listed = srv.json(&["eip", "list"]);
    let addresses: Vec<&str> = listed["publicips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["public_ip_address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses, ["198.51.100.1", "198.51.100.9"]);
    let table = srv.ok(&["eip", "list"]);
    assert!(
        table.contains("ADDRESS") && table.contains("198.51.100.9"),
        "{table}"
    );
    let port = srv.port("10.0.0.5");
    let associated = srv.json(&["eip", "associate", &id, "--port", &port]);
    assert_eq!(associated["port_id"], port.as_str());
    assert_eq!(associated["status"], "ACTIVE");
    let err = srv.fails(1, &["eip", "associate", &id, "--port", "nope"]);
    assert!(err.contains("HTTP 4"), "{err}");
    let dissociated = srv.json(&["eip", "dissociate", &id]);
    assert_eq!(dissociated["status"], "DOWN");
    assert!(dissociated["port_id"].is_null(), "{dissociated}");

    srv.ok(&["eip", "delete", &id]);
    let err = srv.fails(1, &["eip", "show", &id]);
    assert!(err.contains("HTTP 404"), "{err}");
}

/// Writes `text` to `path` with permission bits `mode`.
fn write_mode(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn an_agent_runs_only_with_its_hosts_own_private_credential() {
    let srv = Server::start();
    // The operator enrols the host; `-o json` prints exactly the agent's credential file.
    let issued = srv.json(&["admin", "host", "create", "hv1"]);
    assert_eq!(issued["host_id"], "hv1");
    assert_eq!(issued["endpoint"].as_str(), Some(srv.endpoint.as_str()));
    let text = issued.to_string();
    let credential = srv.dir.path().join("hv1.json");
    let state = srv.dir.path().join("agent-state");
    let agent = |file: &Path, extra: &[&str]| {
        let mut c = Command::new(BIN);
        c.arg("agent")
            .arg("--credential-file")
            .arg(file)
            .arg("--state-dir")
            .arg(&state)
            .args(extra)
            .env_remove("TMIRROR_SERVER")
            .env_remove("TMIRROR_HOST_ID");
        c
    };

    // A credential others may read is refused before anything is sent.
    write_mode(&credential, &text, 0o644);
    let out = agent(&credential, &[]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("chmod 600"), "{err}");
    write_mode(&credential, &text, 0o600);
    // It acts for its own host only.
    let out = agent(&credential, &["--host-id", "hv2"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is not the host of the credential"),
        "{err}"
    );
    // The shared token is gone, and so is its option.
    let out = agent(&credential, &["--token-file", "agent-token"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!srv.dir.path().join("agent-token").exists());

    // With its own credential (and the endpoint in it) the agent registers as hv1, which the
    // operator sees.
    let log_path = srv.dir.path().join("agent.log");
    let mut child = agent(&credential, &[])
        .env("TMIRROR_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Kill(&mut child);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let hosts = srv.json(&["admin", "host", "list"]);
        if hosts["hosts"][0]["agent"]["connected"] == Value::Bool(true) {
            break;
        }
        assert!(Instant::now() < deadline, "the agent never showed: {hosts}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Rotated: the running agent's token is refused, and it says why.
    let rotated = srv.json(&["admin", "host", "rotate", "hv1"]);
    let token = issued["token"].as_str().unwrap();
    assert_ne!(rotated["token"].as_str(), Some(token));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("refused this host's credential") {
            assert!(!log.contains(token), "the token is never logged");
            break;
        }
        assert!(Instant::now() < deadline, "no refusal in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(child);
}

/// `tmirror lb`: a load balancer with its pool, a member (an address of the project's own
/// port; on loopback, where the server's health checks go), a monitor, listed with health; bad input answered in the face's words and changing
/// nothing; another project's key sees none of it; removed and deleted.
#[test]
fn load_balancer_commands() {
    let srv = Server::start();
    let collector = srv.json(&[
        "port",
        "create",
        "--network-id",
        "net-1",
        "--ip",
        "127.0.0.5",
    ]);
    assert!(collector["id"].is_string(), "{collector}");
    let lb = srv.json(&["lb", "create", "--name", "collectors"]);
    let (lb_id, pool) = (
        lb["id"].as_str().unwrap().to_owned(),
        lb["pool_id"].as_str().unwrap().to_owned(),
    );
    let table = srv.ok(&["lb", "create", "--name", "other"]);
    assert!(
        table.contains("pool_id") && table.contains("name"),
        "{table}"
    );
    let m = srv.json(&[
        "lb",
        "member-add",
        "--pool",
        &pool,
        "--address",
        "127.0.0.5",
    ]);
    assert_eq!(
        (&m["address"], &m["protocol_port"], &m["weight"]),
        (
            &Value::from("127.0.0.5"),
            &Value::from(4789),
            &Value::from(1)
        ),
        "{m}"
    );
    assert_eq!(m["operating_status"], "NO_MONITOR", "{m}");
    let member = id(&m);

    // Not an address of the project's ports; a weight beyond 100: refused, nothing added.
    let err = srv.fails(
        1,
        &[
            "lb",
            "member-add",
            "--pool",
            &pool,
            "--address",
            "192.0.2.1",
        ],
    );
    assert!(
        err.contains("HTTP 400") && err.contains("VPC.0101"),
        "{err}"
    );
    let err = srv.fails(
        1,
        &[
            "lb",
            "member-add",
            "--pool",
            &pool,
            "--address",
            "127.0.0.5",
            "--port",
            "6081",
            "--weight",
            "101",
        ],
    );
    assert!(err.contains("HTTP 400"), "{err}");
    let listed = srv.json(&["lb", "member-list", "--pool", &pool]);
    assert_eq!(listed["members"].as_array().unwrap().len(), 1, "{listed}");

    srv.ok(&[
        "lb",
        "monitor-create",
        "--pool",
        &pool,
        "--type",
        "TCP",
        "--delay",
        "5",
        "--timeout",
        "3",
        "--monitor-port",
        "7070",
    ]);
    let table = srv.ok(&["lb", "member-list", "--pool", &pool]);
    assert!(table.starts_with("ID  ADDRESS"), "{table}");
    assert!(
        table.contains(&member) && table.contains("127.0.0.5"),
        "{table}"
    );

    // Another project's key: its pool is not found, its member not removable.
    let project = id(&srv.json(&["admin", "project", "create", "--name", "other"]));
    let key = srv.json(&[
        "admin",
        "credential",
        "create",
        "--project",
        &project,
        "--role",
        "admin",
    ]);
    let file = srv.dir.path().join("other.json");
    std::fs::write(&file, key.to_string()).unwrap();
    let file = file.to_str().unwrap();
    for args in [
        &["lb", "member-list", "--pool", &pool][..],
        &["lb", "member-remove", "--pool", &pool, &member][..],
        &["lb", "delete", &lb_id][..],
    ] {
        let mut all = args.to_vec();
        all.extend(["--credentials", file]);
        let err = srv.fails(1, &all);
        assert!(
            err.contains("HTTP 404") && err.contains("ELB.8902"),
            "{err}"
        );
    }
    let listed = srv.json(&["lb", "member-list", "--pool", &pool]);
    assert_eq!(listed["members"].as_array().unwrap().len(), 1, "{listed}");

    // A pool with members cannot go; removed, it and the load balancer can.
    let err = srv.fails(1, &["lb", "delete", &lb_id, "--pool", &pool]);
    assert!(err.contains("HTTP 409"), "{err}");
    srv.ok(&["lb", "member-remove", "--pool", &pool, &member]);
    let listed = srv.json(&["lb", "member-list", "--pool", &pool]);
    assert_eq!(listed["members"], Value::Array(vec![]), "{listed}");
    let out = srv.ok(&["lb", "delete", &lb_id, "--pool", &pool]);
    assert!(out.contains(&lb_id), "{out}");
    let err = srv.fails(1, &["lb", "member-list", "--pool", &pool]);
    assert!(err.contains("HTTP 404"), "{err}");
}

/// `tmirror lb show` and `lb update`, `member-update`, `monitor-update` and `monitor-delete`:
/// what each changes is shown back; an update that changes nothing makes no request; bad
/// values answered in the face's words change nothing; a reader may show, not update.
#[test]
fn load_balancer_show_and_update() {
    let srv = Server::start();
    srv.port("127.0.0.6");
    let lb = srv.json(&["lb", "create", "--name", "sensors"]);
    let (lb_id, pool) = (
        lb["id"].as_str().unwrap().to_owned(),
        lb["pool_id"].as_str().unwrap().to_owned(),
    );
    let member = id(&srv.json(&[
        "lb",
        "member-add",
        "--pool",
        &pool,
        "--address",
        "127.0.0.6",
    ]));
    let shown = srv.json(&["lb", "show", &lb_id]);
    assert_eq!(
        (
            &shown["name"],
            &shown["admin_state_up"],
            &shown["operating_status"],
            &shown["pool_id"],
            &shown["healthmonitor"]
        ),
        (
            &Value::from("sensors"),
            &Value::from(true),
            &Value::from("ONLINE"),
            &Value::from(pool.as_str()),
            &Value::Null
        ),
        "{shown}"
    );
    assert_eq!(shown["members"][0]["id"], member.as_str(), "{shown}");
    let table = srv.ok(&["lb", "show", &lb_id]);
    assert!(
        table.contains("healthmonitor     none") && table.contains(&member),
        "{table}"
    );

    // Name, description and admin state.
    let out = srv.ok(&[
        "lb",
        "update",
        &lb_id,
        "--name",
        "renamed",
        "--description",
        "IDS fleet",
        "--enabled=false",
    ]);
    assert!(
        out.contains("renamed") && out.contains("IDS fleet"),
        "{out}"
    );
    let shown = srv.json(&["lb", "show", &lb_id]);
    assert_eq!(
        (&shown["admin_state_up"], &shown["operating_status"]),
        (&Value::from(false), &Value::from("OFFLINE")),
        "{shown}"
    );
    let err = srv.fails(2, &["lb", "update", &lb_id]);
    assert!(err.contains("nothing to change"), "{err}");
    let err = srv.fails(1, &["lb", "update", &pool, "--name", "x"]);
    assert!(
        err.contains("HTTP 404") && err.contains("ELB.8902"),
        "{err}"
    );

    // A member's weight and state.
    let m = srv.json(&[
        "lb",
        "member-update",
        "--pool",
        &pool,
        &member,
        "--weight",
        "0",
        "--enabled=false",
    ]);
    assert_eq!(m["weight"], 0, "{m}");
    let err = srv.fails(
        1,
        &[
            "lb",
            "member-update",
            "--pool",
            &pool,
            &member,
            "--weight",
            "101",
        ],
    );
    assert!(
        err.contains("HTTP 400") && err.contains("VPC.0101"),
        "{err}"
    );
    assert_eq!(srv.json(&["lb", "show", &lb_id])["members"][0]["weight"], 0);
    srv.fails(2, &["lb", "member-update", "--pool", &pool, &member]);

    // The health check: set, changed, refused when the timeout passes the delay, removed.
    let monitor = id(&srv.json(&[
        "lb",
        "monitor-create",
        "--pool",
        &pool,
        "--delay",
        "5",
        "--timeout",
        "3",
    ]));
    let m = srv.json(&[
        "lb",
        "monitor-update",
        &monitor,
        "--type",
        "UDP_CONNECT",
        "--delay",
        "7",
        "--monitor-port",
        "7070",
    ]);
    assert_eq!(
        (&m["type"], &m["delay"], &m["timeout"], &m["monitor_port"]),
        (
            &Value::from("UDP_CONNECT"),
            &Value::from(7),
            &Value::from(3),
            &Value::from(7070)
        ),
        "{m}"
    );
    let err = srv.fails(1, &["lb", "monitor-update", &monitor, "--timeout", "8"]);
    assert!(err.contains("HTTP 400") && err.contains("timeout"), "{err}");
    let table = srv.ok(&["lb", "show", &lb_id]);
    assert!(
        table.contains(&format!(
            "{monitor} UDP_CONNECT every 7 s, timeout 3 s, up after 3, down after 3, port 7070"
        )),
        "{table}"
    );
    srv.ok(&["lb", "monitor-update", &monitor, "--enabled=false"]);
    assert!(srv.ok(&["lb", "show", &lb_id]).contains(", disabled"));
    srv.fails(2, &["lb", "monitor-update", &monitor]);

    // A reader of the project shows and changes nothing.
    let project = srv.json(&["port", "list"])["ports"][0]["project_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = srv.json(&[
        "admin",
        "credential",
        "create",
        "--project",
        &project,
        "--role",
        "reader",
    ]);
    let file = srv.dir.path().join("reader.json");
    std::fs::write(&file, key.to_string()).unwrap();
    let file = file.to_str().unwrap();
    srv.ok(&["lb", "show", &lb_id, "--credentials", file]);
    for args in [
        &["lb", "update", &lb_id, "--name", "x"][..],
        &["lb", "monitor-delete", &monitor][..],
    ] {
        let mut all = args.to_vec();
        all.extend(["--credentials", file]);
        let err = srv.fails(1, &all);
        assert!(err.contains("HTTP 403"), "{err}");
    }
    assert_eq!(srv.json(&["lb", "show", &lb_id])["name"], "renamed");

    let out = srv.ok(&["lb", "monitor-delete", &monitor]);
    assert!(out.contains(&monitor), "{out}");
    assert_eq!(
        srv.json(&["lb", "show", &lb_id])["healthmonitor"],
        Value::Null
    );
}
