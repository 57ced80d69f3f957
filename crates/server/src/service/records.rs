//! Records the Alibaba face keeps beside the model (`docs/aliyun.md`): whether a project opened
//! the traffic mirror service, tags, resource groups, and deleted sessions still shown as
//! `Deleting` (tombstones). Read here outside a transaction; written, and read inside a write,
//! in the transaction from [`Service::begin`], next to the write operations they go with.

use tmirror_model::ProjectId;
use tmirror_store::{AliyunExtras, AliyunTag, AliyunTombstone};

use super::states::{tombstone_state, Lifecycle};
use super::{Service, ServiceResult};

/// How many tombstones one pass of the clean-up looks at: bounded work, whatever their number.
pub const TOMBSTONES_PER_PASS: u32 = 500;

impl Service {
    /// Whether the project called OpenTrafficMirrorService.
    pub async fn aliyun_service_opened(&self, project: &ProjectId) -> ServiceResult<bool> {
        let known = || self.aliyun_opened.lock().unwrap_or_else(|e| e.into_inner());
        if known().contains(project) {
            return Ok(true);
        }
        let mut r = self.store.read().await?;
        let opened = r.aliyun_service_opened(project).await?;
        if opened {
            known().insert(project.clone());
        }
        Ok(opened)
    }

    /// Every tag of the project's resources of `resource_type`, in the order they were set.
    pub async fn aliyun_tags(
        &self,
        project: &ProjectId,
        resource_type: &str,
    ) -> ServiceResult<Vec<AliyunTag>> {
        let mut r = self.store.read().await?;
        Ok(r.aliyun_tags(project, resource_type).await?)
    }

    /// The tags and resource groups of the project's resources of `resource_type` with these
    /// canonical ids.
    pub async fn aliyun_extras_of(
        &self,
        project: &ProjectId,
        resource_type: &str,
        ids: &[String],
    ) -> ServiceResult<AliyunExtras> {
        let mut r = self.store.read().await?;
        Ok(r.aliyun_extras_of(project, resource_type, ids).await?)
    }

    /// `(resource id, group)` of the project's resources of `resource_type` outside the default
    /// resource group.
    pub async fn aliyun_resource_groups(
        &self,
        project: &ProjectId,
        resource_type: &str,
    ) -> ServiceResult<Vec<(String, String)>> {
        let mut r = self.store.read().await?;
        Ok(r.aliyun_resource_groups(project, resource_type).await?)
    }

    /// The project's tombstones of `kind`, oldest first.
    pub async fn aliyun_tombstones(
        &self,
        project: &ProjectId,
        kind: &str,
    ) -> ServiceResult<Vec<AliyunTombstone>> {
        let mut r = self.store.read().await?;
        Ok(r.aliyun_tombstones(project, kind).await?)
    }

    /// One pass of the tombstone clean-up (a background task of the server, so that reads never
    /// write and a project nobody lists does not keep them): looks at up to
    /// [`TOMBSTONES_PER_PASS`] tombstones after `cursor` and forgets those whose deletion every
    /// connected agent hosting the session applied. Returns where the next pass starts (`""`
    /// after the last page).
    pub async fn sweep_tombstones(&self, cursor: &str) -> ServiceResult<String> {
        let applied = self.applied().await?;
        let mut data = self.store.agent_data().await?;
        let page = data
            .aliyun_tombstones_after(cursor, TOMBSTONES_PER_PASS)
            .await?;
        let hosts: Vec<String> = page.iter().flat_map(|t| t.hosts.clone()).collect();
        self.look_up_hosts(&applied, &hosts).await?;
        let settled: Vec<String> = page
            .iter()
            .filter(|t| tombstone_state(t, &applied) != Lifecycle::Deleting)
            .map(|t| t.id.clone())
            .collect();
        if !settled.is_empty() {
            data.aliyun_forget_tombstones(&settled).await?;
        }
        Ok(match page.last() {
            Some(last) if page.len() as u32 == TOMBSTONES_PER_PASS => last.id.clone(),
            _ => String::new(),
        })
    }
}
