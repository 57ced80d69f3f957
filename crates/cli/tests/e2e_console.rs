//! End to end, as root, in network namespaces, in a real browser: headless Chromium (driven
//! through ChromeDriver's WebDriver API) signs in to the web console of a server whose agent
//! mirrors vm1's traffic. A tenant sees its own project's session and not the operator's,
//! nor the hosts; a wrong secret is refused; signing out ends the sign-in. The operator sees
//! every project's sessions and the hosts with their health, and the plot of a session's
//! copies per second grows while traffic flows. Screenshots are saved as test artefacts
//! (`$CARGO_TARGET_TMPDIR/console-*.png`).

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use support::{root_or_skip, Cloud, Spec};
use tmirror_netlab::addr;

const CONSOLE: &str = "https://127.0.0.1:9696/console";
const DRIVER: &str = "http://127.0.0.1:9515";
/// The key WebDriver names an element reference with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A Chromium session of ChromeDriver running in the hypervisor's namespace (where the
/// server listens on loopback); every call goes through `curl` in that namespace. The
/// browser is closed when this is dropped, also on failure.
struct Browser<'c> {
    cloud: &'c Cloud,
    session: String,
}

impl<'c> Browser<'c> {
    fn call(cloud: &Cloud, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{DRIVER}{path}");
        let mut args = vec!["-sS", "--max-time", "60", "-X", method, url.as_str()];
        let body = body.map(|b| b.to_string());
        if let Some(b) = &body {
            args.extend(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        let out = cloud
            .lab
            .command("hv", "curl", &args)
            .output()
            .expect("run curl");
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "WebDriver {method} {path}: {} {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        if answer["value"]["error"].is_string() {
            panic!("WebDriver {method} {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    fn open(cloud: &'c Cloud, profile: &Path) -> Browser<'c> {
        let profile = format!("--user-data-dir={}", profile.display());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                         "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync",
                         "--window-size=1400,1000", profile],
            },
        }}});
        let v = Self::call(cloud, "POST", "/session", Some(caps));
        Browser {
            cloud,
            session: v["sessionId"].as_str().expect("a WebDriver session").into(),
        }
    }

    fn at(&self, path: &str, method: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        Self::call(self.cloud, method, &path, body)
    }

    fn go(&self, url: &str) {
        self.at("/url", "POST", Some(json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.at("/url", "GET", None).as_str().unwrap().to_owned()
    }

    fn source(&self) -> String {
        self.at("/source", "GET", None).as_str().unwrap().to_owned()
    }

    fn element(&self, css: &str) -> String {
        let v = self.at(
            "/element",
            "POST",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().expect("an element").to_owned()
    }

    fn type_in(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.at(
            &format!("/element/{e}/value"),
            "POST",
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, css: &str) {
        let e = self.element(css);
        self.at(&format!("/element/{e}/click"), "POST", Some(json!({})));
    }

    fn script(&self, script: &str) -> Value {
        self.at(
            "/execute/sync",
            "POST",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Waits (at most 15 s) until the script `condition` returns true in the page.
    fn wait_until(&self, condition: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let script = format!("return document.readyState === 'complete' && ({condition});");
        while self.script(&script) != true {
            assert!(Instant::now() < deadline, "{what}: {}", self.source());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks `css` and waits until the page it leads to has loaded.
    fn click_through(&self, css: &str) {
        self.script("window.__before = true; return true");
        self.click(css);
        self.wait_until("window.__before === undefined", "the next page loads");
    }

    fn sign_in(&self, access_key: &str, secret_key: &str) {
        self.go(&format!("{CONSOLE}/sign-in"));
        self.type_in("#access_key", access_key);
        self.type_in("#secret_key", secret_key);
        self.click_through("#submit");
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.at("/screenshot", "GET", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("console-{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.session);
        let url = format!("{DRIVER}{path}");
        let _ = self
            .cloud
            .lab
            .command(
                "hv",
                "curl",
                &["-sS", "--max-time", "30", "-X", "DELETE", &url],
            )
            .output();
    }
}

fn chromium_or_skip() -> Option<()> {
    for tool in [
        "/usr/bin/chromium",
        "/usr/bin/chromedriver",
        "/usr/bin/curl",
    ] {
        if !Path::new(tool).exists() {
            eprintln!("SKIPPED: {tool} is missing (scripts/deps.sh installs it)");
            return None;
        }
    }
    Some(())
}

/// Waits (at most 20 s) until ChromeDriver answers.
fn driver_ready(cloud: &Cloud) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = cloud
            .lab
            .command(
                "hv",
                "curl",
                &["-sS", "--max-time", "2", &format!("{DRIVER}/status")],
            )
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if v["value"]["ready"] == true {
            return;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().expect(key).to_owned()
}

#[test]
fn the_console_shows_each_caller_its_own_and_plots_live_copies() {
    let Some(()) = root_or_skip("the_console_shows_each_caller_its_own_and_plots_live_copies")
    else {
        return;
    };
    let Some(()) = chromium_or_skip() else {
        return;
    };
    let mut cloud = Cloud::new("tme2e-cons", 2);
    cloud.start_server();
    cloud.start_collector();
    cloud.start_echo("vm2");
    cloud.start_agent_with(&["--poll-wait-secs", "1"]);

    // The operator's session, mirroring vm1 to the collector.
    let vm1 = cloud.vm_port(1);
    let target = cloud.collector_port();
    let filter = cloud.accept_all_ipv4("op-filter");
    let op_session = cloud.session("op-session", &filter, &vm1, &target, Spec::new(1, 700, 128));
    cloud.wait_capturing(&["tap1"]);
    let operator: Value = serde_json::from_slice(
        &std::fs::read(cloud.dir.path().join("data/admin-credentials.json")).unwrap(),
    )
    .unwrap();
    let op_project = text(&operator, "project_id");

    // A tenant with a session of its own (ports in its own network, not mirrored anywhere).
    let project = cloud.project("acme");
    let (key, _) = cloud.credential(&project, "reader", "acme-reader.json");
    let (_, member_file) = cloud.credential(&project, "member", "acme-member.json");
    let as_member = |args: &[&str]| -> String {
        let out = cloud.cli_as(&member_file, args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        text(&v, "id")
    };
    let src = as_member(&[
        "port",
        "create",
        "--network-id",
        "acme-net",
        "--ip",
        "10.9.0.5",
    ]);
    let dst = as_member(&[
        "port",
        "create",
        "--network-id",
        "acme-net",
        "--ip",
        "10.9.0.9",
    ]);
    let f = as_member(&["filter", "create", "--name", "acme-filter"]);
    as_member(&[
        "session",
        "create",
        "--name",
        "acme-session",
        "--filter",
        &f,
        "--source",
        &src,
        "--target",
        &dst,
        "--priority",
        "1",
        "--vni",
        "800",
    ]);

    let log = cloud.dir.path().join("chromedriver.log");
    cloud
        .lab
        .spawn(
            "chromedriver",
            "hv",
            "/usr/bin/chromedriver",
            &["--port=9515"],
            &log,
        )
        .expect("start chromedriver");
    driver_ready(&cloud);

    // --- The tenant (a reader key).
    {
        let profile = tempfile::tempdir().unwrap();
        let b = Browser::open(&cloud, profile.path());
        b.go(&format!("{CONSOLE}/sessions"));
        assert!(
            b.url().ends_with("/console/sign-in"),
            "signed out: {}",
            b.url()
        );

        b.sign_in(&text(&key, "access_key"), "not-the-secret");
        let page = b.source();
        assert!(page.contains("Wrong access key or secret key"), "{page}");

        b.sign_in(&text(&key, "access_key"), &text(&key, "secret_key"));
        assert!(b.url().ends_with("/console/sessions"), "{}", b.url());
        let page = b.source();
        assert!(page.contains("acme-session"), "{page}");
        assert!(
            !page.contains("op-session"),
            "another project's session: {page}"
        );
        assert!(!page.contains(&op_project), "{page}");
        assert!(!page.contains("/console/hosts"), "no hosts link: {page}");
        let shown = b.script("return document.getElementById('who-project').textContent");
        assert_eq!(shown, project.as_str());
        // The cookie is out of scripts' reach, same-site only, and TLS only.
        let cookies = b.at("/cookie", "GET", None);
        let c = cookies
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "tmirror_console")
            .expect("the sign-in cookie")
            .clone();
        assert_eq!(c["httpOnly"], true, "{c}");
        assert_eq!(c["secure"], true, "{c}");
        assert_eq!(c["sameSite"], "Strict", "{c}");
        assert_eq!(
            b.script("return document.cookie"),
            "",
            "no cookie a script can read"
        );
        b.screenshot("tenant");

        b.go(&format!("{CONSOLE}/hosts"));
        assert!(b.source().contains("Only the operator sees the hosts"));
        b.go(&format!("{CONSOLE}/sessions/{op_project}/{op_session}"));
        assert!(b.source().contains("No such session"), "{}", b.source());
        b.go(&format!("{CONSOLE}/sessions?project={op_project}"));
        assert!(!b.source().contains("op-session"));

        b.go(&format!("{CONSOLE}/sessions"));
        b.click_through("#sign-out");
        assert!(b.url().ends_with("/console/sign-in"), "{}", b.url());
        b.go(&format!("{CONSOLE}/sessions"));
        assert!(b.url().ends_with("/console/sign-in"), "signed out for good");
    }

    // --- The operator.
    let profile = tempfile::tempdir().unwrap();
    let b = Browser::open(&cloud, profile.path());
    b.sign_in(
        &text(&operator, "access_key"),
        &text(&operator, "secret_key"),
    );
    let page = b.source();
    assert!(
        page.contains("op-session") && page.contains("acme-session"),
        "every project: {page}"
    );
    b.go(&format!("{CONSOLE}/sessions?name=acme"));
    let page = b.source();
    assert!(
        page.contains("acme-session") && !page.contains("op-session"),
        "{page}"
    );
    b.go(&format!("{CONSOLE}/sessions?vni=notanumber"));
    assert!(b.source().contains("a number from 0 to 16777215"));

    b.go(&format!("{CONSOLE}/hosts"));
    let page = b.source();
    assert!(
        page.contains(">hv<") && page.contains("connected"),
        "{page}"
    );
    assert!(page.contains("tap1 capturing"), "{page}");
    b.screenshot("hosts");

    // The plot: samples accumulate, and their values rise above zero while vm1 talks.
    b.go(&format!("{CONSOLE}/sessions/{op_project}/{op_session}"));
    let samples = || -> Vec<f64> {
        let v =
            b.script("return document.getElementById('plot').getAttribute('data-values') || ''");
        v.as_str()
            .unwrap()
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect()
    };
    let mut seen = Vec::new();
    for burst in 0..20 {
        let r = cloud.traffic(
            "vm1",
            &[
                "udp",
                &addr::vm4(2),
                "7001",
                "20",
                "100",
                &format!("c{burst}"),
            ],
        );
        assert_eq!(r["echoed"], 20, "{r}");
        seen = samples();
        if seen.len() >= 3 && seen.iter().any(|v| *v > 0.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(seen.len() >= 3, "the plot took new samples: {seen:?}");
    assert!(
        seen.iter().any(|v| *v > 0.0),
        "copies per second above zero: {seen:?}"
    );
    // Read together: the script may draw again between two calls.
    let drawn = b.script(
        "return [document.getElementById('plot').getAttribute('data-values'), \
         document.getElementById('plot-line').getAttribute('points')]",
    );
    let count = |i: usize| drawn[i].as_str().unwrap().split_whitespace().count();
    assert_eq!(count(1), count(0), "one point per sample: {drawn}");
    b.screenshot("plot");
}
