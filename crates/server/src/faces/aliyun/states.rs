//! Refusing a change while the last one is still on its way to the agents
//! (`IncorrectStatus.*`). The states themselves are the service's (`service::states`).

use tmirror_model::*;

use super::error::{bad, from_service};
use super::{Ctx, Write};
use crate::http::ApiError;
use crate::service::states::{Applied, Lifecycle};

fn busy(code: &str, what: &str, state: Lifecycle) -> ApiError {
    bad(
        code,
        format!(
            "the {what} is {}: its last change has not reached every connected agent yet",
            state.as_str()
        ),
    )
}

/// Refuses a change to a session whose last change is still pending.
pub async fn session_settled(
    w: &mut Write,
    ctx: &Ctx<'_>,
    id: SessionId,
    applied: &Applied,
) -> Result<(), ApiError> {
    // A missing session is the service's answer to give.
    let state = w
        .service(ctx)?
        .session_state(ctx.project(), id, applied)
        .await
        .map_err(from_service)?;
    match state {
        Some(state) if state.is_transient() => Err(busy(
            "IncorrectStatus.TrafficMirrorSession",
            "session",
            state,
        )),
        _ => Ok(()),
    }
}

/// Refuses a change to a filter (and, with `rule`, to that rule) whose last change is pending.
pub async fn filter_settled(
    w: &mut Write,
    ctx: &Ctx<'_>,
    filter: FilterId,
    rule: Option<RuleId>,
    applied: &Applied,
) -> Result<(), ApiError> {
    let state = w
        .service(ctx)?
        .filter_state(ctx.project(), filter, rule, applied)
        .await
        .map_err(from_service)?;
    if !state.is_transient() {
        return Ok(());
    }
    Err(match rule {
        Some(_) => busy("IncorrectStatus.TrafficMirrorRule", "rule", state),
        None => busy("IncorrectStatus.TrafficMirrorFilter", "filter", state),
    })
}
