//! The console's pages, rendered on the server as plain HTML. Every value from the store or
//! the request goes through [`esc`]; the only script is the console's own file (the plot),
//! and the Content-Security-Policy allows nothing else.

use std::fmt::Write;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tmirror_model::{FilterRule, Port, Project, Role};

use crate::faces::admin::views::time_text;
use crate::service::agents::connected;
use crate::service::delivery::HostDelivery;
use crate::service::overview::{SessionFilter, SessionOverview};
use crate::service::tenancy::HostView;

/// What the header shows of the signed-in caller.
pub struct Who<'a> {
    pub access_key: &'a str,
    pub role: Role,
    pub project: &'a str,
    /// The sign-out form's token.
    pub form_token: &'a str,
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page with the console's security headers.
pub fn page(status: StatusCode, title: &str, who: Option<&Who>, body: &str) -> Response {
    let mut nav = String::new();
    if let Some(w) = who {
        let _ = write!(
            nav,
            r#"<nav><a href="/console/sessions">Sessions</a>{hosts}
<span class="who">signed in as <b id="who-key">{key}</b> ({role}, project <span id="who-project">{project}</span>)</span>
<form method="post" action="/console/sign-out" class="inline"><input type="hidden" name="form_token" value="{token}"><button type="submit" id="sign-out">Sign out</button></form></nav>"#,
            hosts = if w.role == Role::Operator {
                r#" <a href="/console/hosts">Hosts</a>"#
            } else {
                ""
            },
            key = esc(w.access_key),
            role = w.role.as_str(),
            project = esc(w.project),
            token = esc(w.form_token),
        );
    }
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · tmirror</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/console/assets/console.css"></head>
<body><header><h1>tmirror</h1>{nav}</header><main>
<h2>{title}</h2>
{body}
</main><script src="/console/assets/console.js"></script></body></html>
"#,
        title = esc(title),
    );
    let mut r = (status, html).into_response();
    secure_headers(r.headers_mut());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// What every console answer carries: nothing cached, nothing framed, no other origin's
/// scripts, styles, images or form targets.
pub fn secure_headers(h: &mut axum::http::HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // `same-origin`, not `no-referrer`: with the latter, browsers send `Origin: null` on the
    // forms' posts, and the sign-in check could not tell our own forms from another site's.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// The sign-in form, with the form token also set as a cookie by the caller.
pub fn sign_in(form_token: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!(r#"<p class="error" id="error">{}</p>"#, esc(e)))
        .unwrap_or_default();
    format!(
        r#"{error}<form method="post" action="/console/sign-in" id="sign-in">
<input type="hidden" name="form_token" value="{token}">
<label>Access key <input name="access_key" id="access_key" autocomplete="username" required></label>
<label>Secret key <input name="secret_key" id="secret_key" type="password" autocomplete="current-password" required></label>
<button type="submit" id="submit">Sign in</button></form>
<p class="hint">A key of your project (any role) shows your project; the operator's key shows every project and the hosts.</p>"#,
        token = esc(form_token),
    )
}

fn rate(v: f64) -> String {
    format!("{v:.1}")
}

fn port_text(p: &Port) -> String {
    let ip = p
        .primary_ip()
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "no address".into());
    if p.host_id.is_empty() {
        format!("{ip} ({})", p.interface_name())
    } else {
        format!("{ip} ({} on {})", p.interface_name(), p.host_id)
    }
}

fn applied_count(hosts: &[HostDelivery]) -> String {
    let n = hosts.iter().filter(|h| h.applied).count();
    format!("{n}/{}", hosts.len())
}

/// The session list with its filter form.
pub fn sessions(
    items: &[SessionOverview],
    more: bool,
    filter: &SessionFilter,
    projects: &[Project],
    operator: bool,
) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<form method="get" action="/console/sessions" id="filters" class="filters">
<label>Name <input name="name" value="{name}"></label>
<label>Enabled <select name="enabled">{enabled}</select></label>
<label>VNI <input name="vni" value="{vni}" size="8"></label>"#,
        name = esc(filter.name.as_deref().unwrap_or("")),
        vni = filter.vni.map(|v| v.to_string()).unwrap_or_default(),
        enabled = [("", "any"), ("true", "yes"), ("false", "no")]
            .iter()
            .map(|(v, label)| {
                let selected = filter.enabled.map(|e| e.to_string()).unwrap_or_default() == *v;
                format!(
                    r#"<option value="{v}"{}>{label}</option>"#,
                    if selected { " selected" } else { "" }
                )
            })
            .collect::<String>(),
    );
    if operator {
        let options: String = projects
            .iter()
            .map(|p| {
                let selected = filter.project.as_ref() == Some(&p.id);
                format!(
                    r#"<option value="{id}"{sel}>{name} ({id})</option>"#,
                    id = esc(p.id.as_str()),
                    name = esc(&p.name),
                    sel = if selected { " selected" } else { "" }
                )
            })
            .collect();
        let _ = write!(
            out,
            r#"<label>Project <select name="project"><option value="">every project</option>{options}</select></label>"#
        );
    }
    out.push_str(r#"<button type="submit">Filter</button></form>"#);
    if items.is_empty() {
        out.push_str(r#"<p id="no-sessions">No session matches.</p>"#);
        return out;
    }
    out.push_str(
        r#"<table id="sessions"><thead><tr><th>Name</th><th>Project</th><th>State</th><th>Enabled</th><th>Priority</th><th>VNI</th><th>Filter</th><th>Sources</th><th>Target</th><th>Applied</th><th>Copies/s</th></tr></thead><tbody>"#,
    );
    for o in items {
        let s = o.session();
        let filter = match &o.filter {
            Some(f) => format!(
                "{} ({} ingress, {} egress rules)",
                esc(&f.filter.name),
                f.ingress_rules.len(),
                f.egress_rules.len()
            ),
            None => "-".into(),
        };
        let sources: Vec<String> = o.sources.iter().map(|p| esc(&port_text(p))).collect();
        let target = o
            .target
            .as_ref()
            .map(|p| esc(&port_text(p)))
            .unwrap_or_else(|| "-".into());
        let _ = write!(
            out,
            r#"<tr class="session" data-session="{id}"><td><a href="/console/sessions/{project}/{id}">{name}</a></td><td>{project}</td><td>{state}</td><td>{enabled}</td><td>{priority}</td><td>{vni}</td><td>{filter}</td><td>{sources}</td><td>{target}</td><td>{applied}</td><td class="num">{cps}</td></tr>"#,
            id = s.id,
            project = esc(s.project_id.as_str()),
            name = esc(&s.name),
            state = o.delivery.state.as_str(),
            enabled = s.enabled,
            priority = s.priority.get(),
            vni = s.vni.get(),
            sources = sources.join("<br>"),
            applied = applied_count(&o.delivery.hosts),
            cps = rate(o.delivery.copies_per_second()),
        );
    }
    out.push_str("</tbody></table>");
    if more {
        out.push_str(
            r#"<p class="hint">More sessions match than are shown: narrow the filters.</p>"#,
        );
    }
    out
}

fn rules_table(direction: &str, rules: &[FilterRule]) -> String {
    let mut out = format!(
        "<h4>{direction}</h4><table class=\"rules\"><thead><tr><th>Priority</th><th>Action</th><th>Protocol</th><th>Source</th><th>Destination</th></tr></thead><tbody>"
    );
    let any = |v: Option<String>| v.unwrap_or_else(|| "any".into());
    for r in rules {
        let m = &r.matches;
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{} {}</td><td>{} {}</td><td>{} {}</td></tr>",
            r.priority.get(),
            esc(&format!("{:?}", r.action).to_lowercase()),
            esc(&format!("{:?}", m.ethertype)),
            esc(&r.protocol_spelling),
            esc(&any(m.source_cidr.map(|c| c.to_string()))),
            esc(&any(m.source_port_range.map(|p| p.to_string()))),
            esc(&any(m.destination_cidr.map(|c| c.to_string()))),
            esc(&any(m.destination_port_range.map(|p| p.to_string()))),
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// One session: its settings, filter rules, sources, target, delivery per host, and the
/// live plot of its copies per second (drawn by the console's script).
pub fn session(o: &SessionOverview) -> String {
    let s = o.session();
    let d = &o.delivery;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<dl class="fields"><dt>Id</dt><dd id="session-id">{id}</dd><dt>Project</dt><dd>{project}</dd>
<dt>Description</dt><dd id="session-description">{description}</dd>
<dt>State</dt><dd id="session-state">{state}</dd><dt>Enabled</dt><dd>{enabled}</dd>
<dt>Priority</dt><dd>{priority}</dd><dt>VNI</dt><dd>{vni}</dd><dt>Packet length</dt><dd>{len}</dd>
<dt>Applied everywhere</dt><dd id="applied-everywhere">{applied}</dd>
<dt>Created</dt><dd>{created}</dd><dt>Updated</dt><dd>{updated}</dd></dl>"#,
        id = s.id,
        project = esc(s.project_id.as_str()),
        description = esc(&s.description),
        state = d.state.as_str(),
        enabled = s.enabled,
        priority = s.priority.get(),
        vni = s.vni.get(),
        len = s.packet_length.get(),
        applied = d.applied_everywhere(),
        created = time_text(s.created_at.0),
        updated = time_text(s.updated_at.0),
    );
    let _ = write!(
        out,
        r#"<h3>Copies per second, live</h3>
<figure id="plot" data-source="/console/sessions/{project}/{id}/delivery.json">
<svg id="plot-svg" viewBox="0 0 600 200" width="600" height="200" role="img" aria-label="copies per second over the last five minutes">
<rect x="0" y="0" width="600" height="200" class="plot-bg"/>
<polyline id="plot-line" points="" class="plot-line"/>
<text x="4" y="14" id="plot-max" class="plot-label">0</text>
<text x="4" y="196" class="plot-label">0</text>
<text x="596" y="196" text-anchor="end" class="plot-label">now</text>
<text x="300" y="196" text-anchor="middle" class="plot-label">last 5 minutes</text>
</svg>
<figcaption>Now <b id="plot-now">{now}</b> copies/s over every host · <span id="plot-samples">0</span> samples</figcaption>
</figure>"#,
        project = esc(s.project_id.as_str()),
        id = s.id,
        now = rate(d.copies_per_second()),
    );
    out.push_str(
        r#"<h3>Delivery per host</h3><table id="delivery"><thead><tr><th>Host</th><th>Connected</th><th>Applied</th><th>Generation</th><th>Copies/s</th><th>Bytes/s</th><th>Copies</th><th>Bytes</th></tr></thead><tbody>"#,
    );
    for h in &d.hosts {
        let _ = write!(
            out,
            r#"<tr><td>{host}</td><td>{connected}</td><td>{applied}</td><td>{generation}</td><td class="num">{cps}</td><td class="num">{bps}</td><td class="num">{copies}</td><td class="num">{bytes}</td></tr>"#,
            host = esc(&h.host_id),
            connected = h.connected,
            applied = h.applied,
            generation = h
                .applied_generation
                .map(|g| g.to_string())
                .unwrap_or_else(|| "-".into()),
            cps = rate(h.copies_per_second),
            bps = rate(h.bytes_per_second),
            copies = h.copies,
            bytes = h.bytes,
        );
    }
    out.push_str("</tbody></table>");
    out.push_str("<h3>Sources</h3><ul id=\"sources\">");
    for p in &o.sources {
        let _ = write!(out, "<li>{} · {}</li>", esc(&port_text(p)), p.id);
    }
    out.push_str("</ul><h3>Target</h3>");
    let _ = write!(
        out,
        "<p id=\"target\">{}</p>",
        o.target
            .as_ref()
            .map(|p| format!("{} · {}", esc(&port_text(p)), p.id))
            .unwrap_or_else(|| "-".into())
    );
    match &o.filter {
        Some(f) => {
            let _ = write!(out, "<h3>Filter {}</h3>", esc(&f.filter.name));
            out.push_str(&rules_table("Ingress", &f.ingress_rules));
            out.push_str(&rules_table("Egress", &f.egress_rules));
        }
        None => out.push_str("<h3>Filter</h3><p>-</p>"),
    }
    out
}

/// The hosts and their agents' health (the operator's page).
pub fn hosts(hosts: &[HostView]) -> String {
    if hosts.is_empty() {
        return r#"<p id="no-hosts">No host is enrolled (<code>tmirror admin host create HOST</code>).</p>"#.into();
    }
    let now = tmirror_model::Timestamp::now().0;
    let mut out = String::from(
        r#"<table id="hosts"><thead><tr><th>Host</th><th>Enabled</th><th>Agent</th><th>Last seen</th><th>Generation</th><th>Lag</th><th>Capturing</th><th>Drops</th><th>Interfaces</th></tr></thead><tbody>"#,
    );
    for v in hosts {
        let Some(a) = &v.agent else {
            let _ = write!(
                out,
                r#"<tr class="host"><td>{}</td><td>{}</td><td>never seen</td><td>-</td><td>-</td><td>-</td><td>-</td><td>-</td><td>-</td></tr>"#,
                esc(&v.host.host_id),
                v.host.enabled
            );
            continue;
        };
        let interfaces = a.report["interfaces"].as_object();
        let (mut capturing, mut total, mut drops) = (0, 0, 0u64);
        let mut detail = Vec::new();
        for (name, c) in interfaces.into_iter().flatten() {
            total += 1;
            let state = c["state"].as_str().unwrap_or("unknown");
            if state == "capturing" {
                capturing += 1;
            }
            drops += c["ring_drops"].as_u64().unwrap_or(0) + c["send_drops"].as_u64().unwrap_or(0);
            detail.push(format!("{} {}", esc(name), esc(state)));
        }
        let _ = write!(
            out,
            r#"<tr class="host"><td>{host}</td><td>{enabled}</td><td>{agent}</td><td>{seen}</td><td>{generation}</td><td>{lag}</td><td>{capturing}/{total}</td><td>{drops}</td><td>{detail}</td></tr>"#,
            host = esc(&v.host.host_id),
            enabled = v.host.enabled,
            agent = if connected(a.last_seen, now) {
                "connected"
            } else {
                "disconnected"
            },
            seen = time_text(a.last_seen),
            generation = a.applied_generation,
            lag = v.lag.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
            detail = detail.join("<br>"),
        );
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_become_markup() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }
}
