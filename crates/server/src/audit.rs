//! The audit trail: one JSON line per mutating request and per refused authentication —
//! time, request id, client address, access key, project, face, action, resource ids,
//! status. Never a secret: no header values, no bodies, only the ids found in them.
//!
//! The root layer ([`crate::app`]) opens an [`AuditNote`] for each request and puts it in the
//! request's extensions; authentication fills in who called, the faces what was done; the
//! layer writes the line once the answer is known. Lines are JSON, so untrusted strings
//! (names, ids) are escaped and cannot forge a line.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;

/// Where audit lines go.
pub enum AuditSink {
    /// Nothing is written (tests that do not look at it).
    Off,
    Stderr,
    /// A file opened for appending, mode 0600.
    File(Mutex<std::fs::File>),
}

impl AuditSink {
    /// `-` is standard error; anything else a file, created 0600 if missing.
    pub fn open(target: &Path) -> anyhow::Result<AuditSink> {
        use anyhow::Context;
        use std::os::unix::fs::OpenOptionsExt;
        if target == Path::new("-") {
            return Ok(AuditSink::Stderr);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(target)
            .with_context(|| format!("cannot open the audit log {}", target.display()))?;
        Ok(AuditSink::File(Mutex::new(file)))
    }

    fn write(&self, line: &[u8]) {
        let written = match self {
            AuditSink::Off => Ok(()),
            AuditSink::Stderr => std::io::stderr().lock().write_all(line),
            AuditSink::File(f) => f.lock().expect("audit log poisoned").write_all(line),
        };
        if let Err(e) = written {
            tracing::error!(error = %e, "cannot write the audit log");
        }
    }
}

/// What one request did, filled in as the request goes through the layers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditEntry {
    pub time: String,
    pub request_id: String,
    pub client: String,
    pub face: &'static str,
    pub access_key: Option<String>,
    pub project_id: Option<String>,
    pub action: String,
    pub resource_ids: Vec<String>,
    pub status: u16,
    /// Whether the request changes something (only those, and refused authentications, are
    /// written).
    #[serde(skip)]
    pub mutating: bool,
    /// Set when the authentication was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// The note of one request, shared by the layers it goes through.
#[derive(Clone, Debug, Default)]
pub struct AuditNote(Arc<Mutex<AuditEntry>>);

impl AuditNote {
    pub fn new(entry: AuditEntry) -> Self {
        AuditNote(Arc::new(Mutex::new(entry)))
    }

    fn with(&self, f: impl FnOnce(&mut AuditEntry)) {
        f(&mut self.0.lock().expect("audit note poisoned"));
    }

    /// Who called: the credential that signed the request.
    pub fn caller(&self, access_key: &str, project: &str) {
        self.with(|e| {
            e.access_key = Some(access_key.to_owned());
            e.project_id = Some(project.to_owned());
        });
    }

    /// The authentication was refused (`why` is the face's message, never a secret); the
    /// access key named in the request, if any, is recorded as given.
    pub fn refused(&self, access_key: Option<&str>, why: &str) {
        self.with(|e| {
            e.access_key = access_key.map(str::to_owned);
            e.refused = Some(why.to_owned());
        });
    }

    /// Whether the authentication was refused.
    pub fn is_refused(&self) -> bool {
        self.0
            .lock()
            .expect("audit note poisoned")
            .refused
            .is_some()
    }

    /// The action, when the face names it (Alibaba's `Action`), and whether it changes state.
    pub fn action(&self, action: &str, mutating: bool) {
        self.with(|e| {
            e.action = action.to_owned();
            e.mutating = mutating;
        });
    }

    /// The action the face named, if it named one.
    pub fn action_name(&self) -> Option<String> {
        let e = self.0.lock().expect("audit note poisoned");
        (!e.action.is_empty() && !e.action.contains(' ')).then(|| e.action.clone())
    }

    pub fn resource(&self, id: &str) {
        self.with(|e| {
            if !id.is_empty() && !e.resource_ids.iter().any(|r| r == id) {
                e.resource_ids.push(id.to_owned());
            }
        });
    }

    /// Finishes the entry with the answer's status and the ids in its body; `None` if the
    /// request is not one to record.
    pub fn finish(&self, status: u16, body: Option<&Value>) -> Option<AuditEntry> {
        let mut e = self.0.lock().expect("audit note poisoned").clone();
        e.status = status;
        if !e.mutating && e.refused.is_none() {
            return None;
        }
        if let Some(body) = body {
            collect_ids(body, 0, &mut e.resource_ids);
        }
        Some(e)
    }
}

/// The ids an answer names (`id`, `…_id`, `…Id` string fields near the top), so a create's
/// new id is in its line. Request ids and project ids are not resources.
fn collect_ids(v: &Value, depth: usize, out: &mut Vec<String>) {
    if depth > 2 {
        return;
    }
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let is_id = k == "id" || k.ends_with("_id") || k.ends_with("Id");
                let ignored = matches!(
                    k.as_str(),
                    "request_id" | "RequestId" | "project_id" | "tenant_id" | "HostId"
                );
                match v {
                    Value::String(s) if is_id && !ignored && !s.is_empty() && !out.contains(s) => {
                        out.push(s.clone());
                    }
                    Value::Object(_) | Value::Array(_) => collect_ids(v, depth + 1, out),
                    _ => {}
                }
            }
        }
        Value::Array(items) => {
            for item in items.iter().take(16) {
                collect_ids(item, depth + 1, out);
            }
        }
        _ => {}
    }
}

/// The audit trail.
pub struct Audit {
    sink: AuditSink,
}

impl Audit {
    pub fn new(sink: AuditSink) -> Self {
        Audit { sink }
    }

    pub fn write(&self, entry: &AuditEntry) {
        let mut line = serde_json::to_vec(entry).expect("an audit entry serialises");
        line.push(b'\n');
        self.sink.write(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_of_an_answer_without_request_or_project_ids() {
        let mut ids = Vec::new();
        collect_ids(
            &json!({"traffic_mirror_session": {"id": "s1", "project_id": "p", "traffic_mirror_filter_id": "f1"},
                    "request_id": "r", "TrafficMirrorSessionId": "tms-1"}),
            0,
            &mut ids,
        );
        ids.sort();
        assert_eq!(ids, ["f1", "s1", "tms-1"]);
    }

    #[test]
    fn reads_are_not_recorded_but_refusals_are() {
        let note = AuditNote::new(AuditEntry::default());
        assert!(note.finish(200, None).is_none());
        note.refused(Some("AK"), "bad signature");
        let e = note.finish(401, None).unwrap();
        assert_eq!((e.status, e.access_key.as_deref()), (401, Some("AK")));
        let line = serde_json::to_string(&AuditEntry {
            action: "a\nforged".into(),
            ..e
        })
        .unwrap();
        assert!(!line.contains('\n'), "{line}");
    }
}
