//! `/admin/v1/eip-pools`: the operator's elastic IP pools and where their traffic is (the
//! gateway host and its external interface). Only the operator may call these.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Extension;
use serde::Deserialize;
use serde_json::{json, Value};
use tmirror_model::EipPool;

use super::from_service;
use super::handlers::{body, cidrs, no_content, ok, Answer};
use crate::auth::Caller;
use crate::service::eips::EipPoolPut;
use crate::AppState;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolBody {
    cidrs: Vec<String>,
    /// Absent or empty: the pool is bound to no gateway (its EIPs are mirrored nowhere).
    #[serde(default)]
    host_id: String,
    #[serde(default)]
    interface_name: String,
}

fn view(p: &EipPool) -> Value {
    json!({
        "id": p.id,
        "cidrs": p.cidrs,
        "host_id": p.host_id,
        "interface_name": p.interface_name,
        "created_at": super::views::time_text(p.created_at),
    })
}

/// Creates or replaces the pool `{pool_id}` (its addresses and gateway binding).
pub async fn put_pool(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let b: PoolBody = body(&bytes)?;
    let cidrs = cidrs(&b.cidrs)?;
    let pool = st
        .service
        .eip_pool_put(
            &caller.actor(),
            EipPoolPut {
                id,
                cidrs,
                host_id: b.host_id,
                interface_name: b.interface_name,
            },
        )
        .await
        .map_err(from_service)?;
    ok(json!({"eip_pool": view(&pool)}))
}

pub async fn list_pools(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Answer {
    let all = st
        .service
        .eip_pool_list(&caller.actor())
        .await
        .map_err(from_service)?;
    ok(json!({"eip_pools": all.iter().map(view).collect::<Vec<_>>()}))
}

pub async fn delete_pool(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Answer {
    st.service
        .eip_pool_delete(&caller.actor(), &id)
        .await
        .map_err(from_service)?;
    no_content()
}
