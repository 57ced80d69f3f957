//! How a failed client command is reported: the server's message with its status, code and
//! request id, then a one-line hint where one helps. API and connection errors exit with 1;
//! usage errors go through clap, which exits with 2.

use std::path::PathBuf;

use tmirror_client::{ClientError, CredentialsError};

/// A client command that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server refused, or could not be reached.
    #[error("{source}")]
    Client {
        #[source]
        source: ClientError,
        /// Where the credentials came from, for the 401 hint.
        credentials: PathBuf,
    },
    /// The credentials file is missing or malformed.
    #[error("{0}")]
    Credentials(#[from] CredentialsError),
    /// Arguments that parse but make no request (e.g. an update that changes nothing).
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    /// A hint for the error, if there is a useful one.
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Credentials(e) if e.is_not_found() => Some(
                "`tmirror serve --data-dir DIR` writes DIR/admin-credentials.json on first start; \
                 point --data-dir, --credentials or TMIRROR_CREDENTIALS at it"
                    .into(),
            ),
            CliError::Credentials(_) => None,
            CliError::Usage(_) => None,
            CliError::Client {
                source,
                credentials,
            } => client_hint(source, credentials),
        }
    }
}

fn client_hint(e: &ClientError, credentials: &std::path::Path) -> Option<String> {
    if let ClientError::Transport { endpoint, .. } = e {
        return Some(if e.is_timeout() {
            format!("the server at {endpoint} did not answer in time; is it overloaded or stuck?")
        } else {
            format!("is `tmirror serve` running at {endpoint}? (--endpoint sets another)")
        });
    }
    let api = e.api()?;
    let hint = match (api.status, api.error_code.as_str()) {
        (401, _) => format!(
            "check the credentials file {}: its keys must be those of the server you are talking to, \
             and enabled (`tmirror admin credential list --project ID` shows which are)",
            credentials.display()
        ),
        (403, "VPC.0010") => {
            "the credential's role does not allow it; ask the project's admin or the operator \
             for a member credential (`tmirror admin credential create --role member`)"
                .into()
        }
        // The admin API's codes (`tmirror admin ...`).
        (403, "Forbidden") => format!(
            "admin commands need the operator's credential (the server's \
             DATA_DIR/admin-credentials.json) or, for a project's own keys below operator, an \
             admin credential of that project (the credentials used: {})",
            credentials.display()
        ),
        (404, "NotFound") => {
            "`tmirror admin project|host|network list` and `tmirror admin credential list \
             --project ID` show what exists"
                .into()
        }
        (409, "QuotaExceeded") => {
            "`tmirror admin project update ID --quota-...` raises the project's quotas".into()
        }
        (403, "VPC.0007") => {
            "the credential belongs to another project than the one in the URL".into()
        }
        (404, "VPC.1701") => "`tmirror session list` shows the sessions that exist".into(),
        (404, "VPC.1702") => "`tmirror filter list` shows the filters that exist".into(),
        (404, "VPC.1703") => "`tmirror rule list` shows the rules that exist".into(),
        (404, "VPC.1704") => "`tmirror port list` shows the ports that exist".into(),
        (409, "VPC.1710") => {
            "priorities are unique (sessions per project, rules per filter and direction); pick another --priority".into()
        }
        // VPC.1711 (in use): the server's message already names the session and what to do.
        (409, "VPC.1712") => "`tmirror session show ID` lists the current sources".into(),
        (409, "VPC.0114") => {
            "quotas are set on the server (`tmirror serve --max-...`) or per project \
             (`tmirror admin project update ID --quota-...`)"
                .into()
        }
        (status, _) if status >= 500 => {
            "the server log has the details under this request id".into()
        }
        _ => return None,
    };
    Some(hint)
}
