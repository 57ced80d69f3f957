//! The web console over HTTP, as a browser would use it (cookies by hand, redirects not
//! followed): signing in and out and their forgery checks, the cookies' attributes, what a
//! tenant and the operator see, and bad input. The real-browser test is
//! `crates/cli/tests/e2e_console.rs`.

mod common;

use common::{id, Api, TestServer};
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::json;

/// A browser's view of the console: its cookies, kept by hand.
struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: Vec<(String, String)>,
}

struct Answer {
    status: u16,
    location: String,
    set_cookies: Vec<String>,
    body: String,
}

impl Browser {
    fn new(server: &TestServer) -> Browser {
        Browser {
            base: format!("http://{}", server.addr),
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
        }
    }

    async fn send(&mut self, rb: reqwest::RequestBuilder) -> Answer {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let rb = if cookie.is_empty() {
            rb
        } else {
            rb.header(COOKIE, cookie.join("; "))
        };
        let r = rb.send().await.unwrap();
        let set_cookies: Vec<String> = r
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &set_cookies {
            let (pair, attrs) = c.split_once(';').unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !attrs.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
        Answer {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get(LOCATION)
                .map(|l| l.to_str().unwrap().to_owned())
                .unwrap_or_default(),
            set_cookies,
            body: r.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let rb = self.http.get(format!("{}{path}", self.base));
        self.send(rb).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> Answer {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", percent(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut rb = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(o) = origin {
            rb = rb.header(ORIGIN, o);
        }
        self.send(rb).await
    }

    /// The hidden `form_token` of the page.
    fn form_token(page: &str) -> String {
        let at = page
            .find(r#"name="form_token" value=""#)
            .expect("a form token")
            + 25;
        page[at..].split('"').next().unwrap().to_owned()
    }

    async fn sign_in(&mut self, key: &str, secret: &str) -> Answer {
        let page = self.get("/console/sign-in").await.body;
        let token = Self::form_token(&page);
        let origin = self.base.clone();
        self.post(
            "/console/sign-in",
            &[
                ("form_token", &token),
                ("access_key", key),
                ("secret_key", secret),
            ],
            Some(&origin),
        )
        .await
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

fn percent(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A session named `name` in `api`'s project, its description markup; (project, session id).
async fn session(api: &Api, name: &str, vni: u32) -> (String, String) {
    // Addresses apart per VNI: an address is used once.
    let net = vni % 250;
    let src = id(&api.port(&format!("10.{net}.0.5")).await);
    let dst = id(&api.port(&format!("10.{net}.0.9")).await);
    let f = id(&api.filter("f").await);
    let s = api
        .session(
            json!({"name": name, "traffic_mirror_filter_id": f, "traffic_mirror_sources": [src],
            "traffic_mirror_target_id": dst, "traffic_mirror_target_type": "eni", "priority": 1,
            "virtual_network_id": vni,
            "description": "Tom & Jerry's \"tap\" &lt;"}),
        )
        .await
        .ok(201)["traffic_mirror_session"]
        .clone();
    (api.creds.project_id.clone(), id(&s))
}

#[tokio::test]
async fn signing_in_and_out_with_safe_cookies_and_forms_no_other_site_can_post() {
    let server = TestServer::start().await;
    let operator = server.client();
    let tenant = operator.tenant("acme", "reader").await;
    let mut b = Browser::new(&server);

    // Not signed in: every page sends to the sign-in form.
    for path in ["/console", "/console/sessions", "/console/hosts"] {
        let a = b.get(path).await;
        assert_eq!(
            (a.status, a.location.as_str()),
            (303, "/console/sign-in"),
            "{path}"
        );
    }
    let a = b.get("/console/sessions/x/y/delivery.json").await;
    assert_eq!(a.status, 401, "a script gets 401, not a redirect");

    // The form's cookie: HttpOnly, SameSite=Strict, /console only; no Secure over plain HTTP.
    let a = b.get("/console/sign-in").await;
    assert_eq!(a.status, 200);
    let form = &a.set_cookies[0];
    for part in [
        "tmirror_console_form=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
    ] {
        assert!(form.contains(part), "{form}");
    }
    assert!(!form.contains("Secure"), "{form}");
    let token = Browser::form_token(&a.body);
    let key = tenant.creds.access_key.clone();
    let secret = tenant.creds.secret_key.clone();
    let fields = |t: &str| {
        vec![
            ("form_token", t.to_owned()),
            ("access_key", key.clone()),
            ("secret_key", secret.clone()),
        ]
    };

    // Another site's page posting the right key: refused (its Origin; or no form cookie).
    let good = fields(&token);
    let refs: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = b
        .post("/console/sign-in", &refs, Some("https://evil.example"))
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(b.cookie("tmirror_console").is_none());
    let mut stranger = Browser::new(&server);
    let a = stranger.post("/console/sign-in", &refs, None).await;
    assert_eq!(a.status, 403, "no form cookie: {}", a.body);
    // A form token that is not the cookie's.
    let forged = fields("0000");
    let refs2: Vec<(&str, &str)> = forged.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = b.post("/console/sign-in", &refs2, None).await;
    assert_eq!(a.status, 403);
    assert!(b.cookie("tmirror_console").is_none());

    // A wrong secret, an unknown key: 401, the same words, no sign-in.
    for (k, s) in [(key.as_str(), "wrong"), ("NOSUCHKEY", secret.as_str())] {
        let a = b.sign_in(k, s).await;
        assert_eq!(a.status, 401);
        assert!(
            a.body.contains("Wrong access key or secret key"),
            "{}",
            a.body
        );
        assert!(!a.body.contains(&secret), "the secret never comes back");
        assert!(b.cookie("tmirror_console").is_none());
    }

    // Signed in: the cookie is HttpOnly, SameSite=Strict, ends in 8 hours at the latest.
    let a = b.sign_in(&key, &secret).await;
    assert_eq!((a.status, a.location.as_str()), (303, "/console/sessions"));
    let c = a
        .set_cookies
        .iter()
        .find(|c| c.starts_with("tmirror_console="))
        .unwrap();
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=28800",
    ] {
        assert!(c.contains(part), "{c}");
    }
    let signed_in = b.cookie("tmirror_console").unwrap();
    let page = b.get("/console/sessions").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&key));

    // Signing out needs the page's own token.
    let a = b
        .post("/console/sign-out", &[("form_token", "nope")], None)
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(
        b.get("/console/sessions").await.status,
        200,
        "still signed in"
    );
    let out_token = Browser::form_token(&b.get("/console/sessions").await.body);
    let a = b
        .post("/console/sign-out", &[("form_token", &out_token)], None)
        .await;
    assert_eq!((a.status, a.location.as_str()), (303, "/console/sign-in"));
    assert_eq!(b.get("/console/sessions").await.status, 303);
    // The old cookie is worth nothing now, even replayed.
    let mut replay = Browser::new(&server);
    replay.cookies.push(("tmirror_console".into(), signed_in));
    assert_eq!(replay.get("/console/sessions").await.status, 303);

    // A key disabled while signed in ends the sign-in at once.
    let member = operator
        .admin_credential(&tenant.creds.project_id, "member")
        .await;
    let mut m = Browser::new(&server);
    m.sign_in(&member.creds.access_key, &member.creds.secret_key)
        .await;
    assert_eq!(m.get("/console/sessions").await.status, 200);
    operator
        .call(
            "POST",
            &format!("/admin/v1/credentials/{}/disable", member.creds.access_key),
            None,
        )
        .await
        .ok(200);
    assert_eq!(m.get("/console/sessions").await.status, 303);

    // Sign-ins, refusals and sign-outs are in the audit log; no secret ever is.
    let log = std::fs::read_to_string(server.data_path().join("audit.log")).unwrap();
    assert!(!log.contains(&secret) && !log.contains(&member.creds.secret_key));
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |action: &str, status: u16, refused: bool| {
        lines.iter().any(|l| {
            l["face"] == "console"
                && l["action"] == action
                && l["status"] == status
                && l["access_key"] == key.as_str()
                && l["refused"].is_string() == refused
        })
    };
    assert!(has("POST /console/sign-in", 303, false), "{log}");
    assert!(has("POST /console/sign-in", 401, true), "{log}");
    assert!(has("POST /console/sign-out", 303, false), "{log}");
}

#[tokio::test]
async fn a_tenant_sees_its_own_project_and_the_operator_sees_all() {
    let server = TestServer::start().await;
    let operator = server.client();
    let tenant = operator.tenant("acme", "reader").await;
    let writer = operator
        .admin_credential(&tenant.creds.project_id, "member")
        .await;
    let (t_project, t_session) = session(&writer, "acme-session", 800).await;
    let (o_project, o_session) = session(&operator, "operator-session", 900).await;

    let mut t = Browser::new(&server);
    t.sign_in(&tenant.creds.access_key, &tenant.creds.secret_key)
        .await;
    let page = t.get("/console/sessions").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("acme-session"), "{}", page.body);
    assert!(!page.body.contains("operator-session"), "{}", page.body);
    assert!(!page.body.contains(&o_project));
    let own = t
        .get(&format!("/console/sessions/{t_project}/{t_session}"))
        .await;
    assert_eq!(own.status, 200);
    assert!(own.body.contains(r#"id="plot""#));
    // The faces refuse '<' and '>' in descriptions; what they let through is escaped.
    assert!(
        own.body
            .contains("Tom &amp; Jerry&#39;s &quot;tap&quot; &amp;lt;"),
        "text is escaped: {}",
        own.body
    );
    let d = t
        .get(&format!(
            "/console/sessions/{t_project}/{t_session}/delivery.json"
        ))
        .await;
    assert_eq!(d.status, 200);
    let d: serde_json::Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(d["session_id"], t_session.as_str());
    assert_eq!(d["copies_per_second"], 0.0);
    // The operator's session, under either project id: no such session.
    for path in [
        format!("/console/sessions/{o_project}/{o_session}"),
        format!("/console/sessions/{t_project}/{o_session}"),
        format!("/console/sessions/{o_project}/{o_session}/delivery.json"),
        "/console/sessions/nope/nope".to_owned(),
    ] {
        let a = t.get(&path).await;
        assert_eq!(a.status, 404, "{path}: {}", a.body);
        assert!(!a.body.contains("operator-session"));
    }
    let filtered = t
        .get(&format!("/console/sessions?project={o_project}"))
        .await;
    assert_eq!(filtered.status, 200);
    assert!(!filtered.body.contains("operator-session"));
    let hosts = t.get("/console/hosts").await;
    assert_eq!(hosts.status, 403);
    assert!(hosts.body.contains("Only the operator sees the hosts"));

    // Bad filters: a clear 400 page.
    for (query, says) in [
        ("vni=abc", "a number from 0 to 16777215"),
        ("vni=16777216", "a number from 0 to 16777215"),
        ("enabled=maybe", "true, false, or empty"),
        ("project=xyz", "not a project id"),
    ] {
        let a = t.get(&format!("/console/sessions?{query}")).await;
        assert_eq!(a.status, 400, "{query}");
        assert!(a.body.contains(says), "{query}: {}", a.body);
    }

    let mut o = Browser::new(&server);
    o.sign_in(&operator.creds.access_key, &operator.creds.secret_key)
        .await;
    let all = o.get("/console/sessions").await;
    assert!(all.body.contains("operator-session") && all.body.contains("acme-session"));
    let one = o
        .get(&format!("/console/sessions?project={t_project}"))
        .await;
    assert!(one.body.contains("acme-session") && !one.body.contains("operator-session"));
    let vni = o.get("/console/sessions?vni=900").await;
    assert!(vni.body.contains("operator-session") && !vni.body.contains("acme-session"));
    let theirs = o
        .get(&format!("/console/sessions/{t_project}/{t_session}"))
        .await;
    assert_eq!(theirs.status, 200);
    operator.enrol_host("hv1").await;
    let hosts = o.get("/console/hosts").await;
    assert_eq!(hosts.status, 200);
    assert!(hosts.body.contains("hv1") && hosts.body.contains("never seen"));
}

#[tokio::test]
async fn pages_forbid_other_origins_scripts_framing_and_caching() {
    let server = TestServer::start().await;
    let r = reqwest::get(format!("http://{}/console/sign-in", server.addr))
        .await
        .unwrap();
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let js = reqwest::get(format!("http://{}/console/assets/console.js", server.addr))
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(
        !js.text().await.unwrap().contains("http"),
        "nothing fetched from elsewhere"
    );
}

#[tokio::test]
async fn failed_sign_ins_close_the_address_like_failed_signatures() {
    let server = TestServer::start_with(|c| {
        c.throttle.auth_failures = tmirror_server::throttle::Rate {
            rate: 2,
            per: std::time::Duration::from_secs(60),
            burst: 2,
        };
    })
    .await;
    let operator = server.client();
    let mut b = Browser::new(&server);
    for _ in 0..2 {
        let a = b.sign_in(&operator.creds.access_key, "wrong").await;
        assert_eq!(a.status, 401);
    }
    let a = b.get("/console/sign-in").await;
    assert_eq!(a.status, 429, "{}", a.body);
    assert!(a.body.contains("Too many requests"), "{}", a.body);
}
