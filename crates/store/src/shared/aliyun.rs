//! The Alibaba face's own data, for both back-ends (a template: see `crate::shared`).

use std::collections::{HashMap, HashSet};
use std::ops::DerefMut;

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row};
use tmirror_model::ProjectId;

use super::reads::{list_of, SESSION_COLUMNS};
use super::{db_err, Db, Ops, TxState, D};
use crate::shared::Dialect;
use crate::{
    AliyunExtras, AliyunReads, AliyunSessionRow, AliyunTag, AliyunToken, AliyunTombstone,
    AliyunWrites, CapturingAgent, ListQuery, NonceUse, Page, PortCapture, SessionField,
    SourceCapture, StoreError, StoreResult, NONCES_PER_STATEMENT,
};

/// A source capture as the page's statement spells it (`Dialect::SOURCE_CAPTURES`): the port,
/// its host, its interface and the agents there, each (host, last seen, applied generation).
type CaptureColumns = (String, String, String, Vec<(String, i64, i64)>);

type Conn = <Db as sqlx::Database>::Connection;

/// Signature nonces: bookkeeping outside any write transaction (a nonce is not a change of
/// the project's resources, takes no revision and no writer's lock on PostgreSQL).
impl<C: DerefMut<Target = Conn> + Send> Ops<C> {
    /// See [`crate::Store::use_nonces`].
    pub(crate) async fn use_nonces(
        &mut self,
        uses: &[NonceUse],
        now: i64,
    ) -> StoreResult<Vec<bool>> {
        // A use repeated within `uses` is not fresh: only the first goes to the insert (the
        // upsert could not touch one row twice anyway).
        let mut first = HashSet::new();
        let firsts: Vec<bool> = uses
            .iter()
            .map(|u| first.insert((u.access_key.as_str(), u.nonce.as_str())))
            .collect();
        let mut fresh = HashSet::new();
        let mut new: Vec<&NonceUse> = uses
            .iter()
            .zip(&firsts)
            .filter_map(|(u, first)| first.then_some(u))
            .collect();
        // In key order: two servers inserting overlapping batches lock the rows in the same
        // order, so neither waits for the other in a cycle (PostgreSQL).
        new.sort_by(|a, b| (&a.access_key, &a.nonce).cmp(&(&b.access_key, &b.nonce)));
        // One autocommitted statement per chunk; the rows it returns are the fresh uses: new
        // rows, and rows of a use that expired (not forgotten yet), taken over.
        for chunk in new.chunks(NONCES_PER_STATEMENT) {
            let mut b = QueryBuilder::<Db>::new(
                "INSERT INTO aliyun_nonces (access_key, nonce, expires_at) ",
            );
            b.push_values(chunk, |mut row, u| {
                row.push_bind(u.access_key.clone())
                    .push_bind(u.nonce.clone())
                    .push_bind(u.expires_at);
            });
            b.push(
                " ON CONFLICT (access_key, nonce) DO UPDATE SET expires_at = excluded.expires_at \
                 WHERE aliyun_nonces.expires_at < ",
            );
            b.push_bind(now);
            b.push(" RETURNING access_key, nonce");
            for r in b.build().fetch_all(self.conn()).await.map_err(db_err)? {
                let key: String = r.try_get("access_key").map_err(db_err)?;
                let nonce: String = r.try_get("nonce").map_err(db_err)?;
                fresh.insert((key, nonce));
            }
        }
        Ok(uses
            .iter()
            .zip(firsts)
            .map(|(u, first)| first && fresh.contains(&(u.access_key.clone(), u.nonce.clone())))
            .collect())
    }

    /// See [`crate::Store::forget_nonces`].
    pub(crate) async fn forget_nonces(&mut self, now: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM aliyun_nonces WHERE expires_at < $1")
            .bind(now)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl<C: DerefMut<Target = <Db as sqlx::Database>::Connection> + Send> AliyunReads for Ops<C> {
    async fn aliyun_service_opened(&mut self, project: &ProjectId) -> StoreResult<bool> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM aliyun_service WHERE project_id = $1")
                .bind(project.as_str())
                .fetch_one(self.conn())
                .await
                .map_err(db_err)?;
        Ok(n > 0)
    }

    async fn aliyun_token(
        &mut self,
        project: &ProjectId,
        token: &str,
    ) -> StoreResult<Option<AliyunToken>> {
        let row = sqlx::query(
            "SELECT fingerprint, response FROM aliyun_client_tokens WHERE project_id = $1 AND token = $2",
        )
        .bind(project.as_str())
        .bind(token)
        .fetch_optional(self.conn())
        .await
        .map_err(db_err)?;
        row.map(|r| {
            Ok(AliyunToken {
                fingerprint: r.try_get("fingerprint").map_err(db_err)?,
                response: r.try_get("response").map_err(db_err)?,
            })
        })
        .transpose()
    }

    async fn aliyun_tags(
        &mut self,
        project: &ProjectId,
        resource_type: &str,
    ) -> StoreResult<Vec<AliyunTag>> {
        let rows = sqlx::query(
            "SELECT resource_type, resource_id, tag_key, tag_value FROM aliyun_tags
             WHERE project_id = $1 AND resource_type = $2 ORDER BY seq",
        )
        .bind(project.as_str())
        .bind(resource_type)
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        rows.iter().map(crate::rows::tag).collect()
    }

    async fn aliyun_resource_groups(
        &mut self,
        project: &ProjectId,
        resource_type: &str,
    ) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT resource_id, resource_group_id FROM aliyun_resource_groups
             WHERE project_id = $1 AND resource_type = $2",
        )
        .bind(project.as_str())
        .bind(resource_type)
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("resource_id").map_err(db_err)?,
                    r.try_get("resource_group_id").map_err(db_err)?,
                ))
            })
            .collect()
    }

    async fn aliyun_extras_of(
        &mut self,
        project: &ProjectId,
        resource_type: &str,
        ids: &[String],
    ) -> StoreResult<AliyunExtras> {
        // By resource id (the unique indexes on (resource_id, ...)), not every record of the
        // project: a list page costs the same however many resources are tagged. Tags and
        // groups in one statement, told apart by `part`.
        let mut tags = Vec::new();
        let mut groups = Vec::new();
        // Each id is bound twice.
        for chunk in ids.chunks(D::IN_CHUNK / 2) {
            let mut b = QueryBuilder::<Db>::new(
                "SELECT 0 AS part, seq, resource_id, tag_key AS a, tag_value AS b \
                 FROM aliyun_tags WHERE project_id = ",
            );
            b.push_bind(project.as_str().to_owned());
            b.push(" AND resource_type = ");
            b.push_bind(resource_type.to_owned());
            b.push(" AND resource_id");
            D::push_in(&mut b, chunk);
            b.push(
                " UNION ALL SELECT 1 AS part, 0 AS seq, resource_id, resource_group_id AS a, \
                 '' AS b FROM aliyun_resource_groups WHERE project_id = ",
            );
            b.push_bind(project.as_str().to_owned());
            b.push(" AND resource_type = ");
            b.push_bind(resource_type.to_owned());
            b.push(" AND resource_id");
            D::push_in(&mut b, chunk);
            for r in b.build().fetch_all(self.conn()).await.map_err(db_err)? {
                let part: i32 = r.try_get("part").map_err(db_err)?;
                let id: String = r.try_get("resource_id").map_err(db_err)?;
                let a: String = r.try_get("a").map_err(db_err)?;
                if part == 0 {
                    let seq: i64 = r.try_get("seq").map_err(db_err)?;
                    let tag = AliyunTag {
                        resource_type: resource_type.to_owned(),
                        resource_id: id,
                        key: a,
                        value: r.try_get("b").map_err(db_err)?,
                    };
                    tags.push((seq, tag));
                } else {
                    groups.push((id, a));
                }
            }
        }
        tags.sort_by_key(|(seq, _)| *seq);
        Ok(AliyunExtras {
            tags: tags.into_iter().map(|(_, t)| t).collect(),
            groups,
        })
    }

    async fn aliyun_session_page(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<SessionField>,
    ) -> StoreResult<Page<AliyunSessionRow>> {
        let columns = format!(
            "{SESSION_COLUMNS}, \
             (SELECT {} FROM aliyun_tags x WHERE x.resource_id = t.id \
              AND x.resource_type = 'session') AS aliyun_tags, \
             (SELECT g.resource_group_id FROM aliyun_resource_groups g \
              WHERE g.resource_id = t.id) AS aliyun_group, \
             {} AS source_captures",
            D::TAG_PAIRS,
            D::SOURCE_CAPTURES
        );
        list_of(self.conn(), "sessions", &columns, project, q, |r| {
            let revision: i64 = r.try_get("revision").map_err(db_err)?;
            let created: i64 = r.try_get("created_revision").map_err(db_err)?;
            let tags: Option<String> = r.try_get("aliyun_tags").map_err(db_err)?;
            let tags = match tags {
                Some(json) => {
                    let mut tags: Vec<(i64, String, String)> = serde_json::from_str(&json)
                        .map_err(|e| StoreError::Corrupt(format!("session tags {json:?}: {e}")))?;
                    tags.sort_unstable_by_key(|(seq, _, _)| *seq);
                    tags.into_iter().map(|(_, k, v)| (k, v)).collect()
                }
                None => Vec::new(),
            };
            let captures: Option<String> = r.try_get("source_captures").map_err(db_err)?;
            let source_captures = match captures {
                Some(json) => serde_json::from_str::<Vec<CaptureColumns>>(&json)
                    .map_err(|e| StoreError::Corrupt(format!("source captures {json:?}: {e}")))?
                    .into_iter()
                    .map(|(port_id, host_id, interface, agents)| SourceCapture {
                        port: PortCapture {
                            port_id,
                            host_id,
                            interface,
                        },
                        agents: agents
                            .into_iter()
                            .map(|(host_id, last_seen, applied)| CapturingAgent {
                                host_id,
                                last_seen,
                                applied_generation: applied as u64,
                            })
                            .collect(),
                    })
                    .collect(),
                None => Vec::new(),
            };
            Ok(AliyunSessionRow {
                session: crate::rows::session(r)?,
                revision: revision as u64,
                created_revision: created as u64,
                tags,
                resource_group: r.try_get("aliyun_group").map_err(db_err)?,
                source_captures,
            })
        })
        .await
    }

    async fn aliyun_revisions(
        &mut self,
        kind: &str,
        ids: &[String],
    ) -> StoreResult<HashMap<String, (u64, u64)>> {
        let table = match kind {
            "session" => "sessions",
            "filter" => "filters",
            "rule" => "rules",
            other => return Err(StoreError::Corrupt(format!("no revisions for {other:?}"))),
        };
        let mut out = HashMap::new();
        for chunk in ids.chunks(D::IN_CHUNK) {
            let mut b = QueryBuilder::<Db>::new(format!(
                "SELECT id, revision, created_revision FROM {table} WHERE id"
            ));
            D::push_in(&mut b, chunk);
            for r in b.build().fetch_all(self.conn()).await.map_err(db_err)? {
                let revision: i64 = r.try_get("revision").map_err(db_err)?;
                let created: i64 = r.try_get("created_revision").map_err(db_err)?;
                out.insert(
                    r.try_get("id").map_err(db_err)?,
                    (revision as u64, created as u64),
                );
            }
        }
        Ok(out)
    }

    async fn aliyun_tombstones(
        &mut self,
        project: &ProjectId,
        kind: &str,
    ) -> StoreResult<Vec<AliyunTombstone>> {
        let sql = format!(
            "SELECT id, kind, revision, view, hosts FROM aliyun_tombstones
             WHERE project_id = $1 AND kind = $2 ORDER BY revision, id{}",
            D::BYTEWISE
        );
        let rows = sqlx::query(&sql)
            .bind(project.as_str())
            .bind(kind)
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        rows.iter().map(crate::rows::tombstone).collect()
    }
}

#[async_trait]
impl AliyunWrites for Ops<TxState> {
    async fn aliyun_open_service(&mut self, project: &ProjectId, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO aliyun_service (project_id, opened_at) VALUES ($1, $2)
             ON CONFLICT (project_id) DO NOTHING",
        )
        .bind(project.as_str())
        .bind(now)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn aliyun_put_token(
        &mut self,
        project: &ProjectId,
        token: &str,
        record: &AliyunToken,
        now: i64,
        forget_before: i64,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM aliyun_client_tokens WHERE created_at < $1")
            .bind(forget_before)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO aliyun_client_tokens (project_id, token, fingerprint, response, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (project_id, token) DO UPDATE SET fingerprint = excluded.fingerprint,
                response = excluded.response, created_at = excluded.created_at",
        )
        .bind(project.as_str())
        .bind(token)
        .bind(&record.fingerprint)
        .bind(&record.response)
        .bind(now)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn aliyun_set_tag(&mut self, project: &ProjectId, tag: &AliyunTag) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO aliyun_tags (project_id, resource_type, resource_id, tag_key, tag_value)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (resource_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
        )
        .bind(project.as_str())
        .bind(&tag.resource_type)
        .bind(&tag.resource_id)
        .bind(&tag.key)
        .bind(&tag.value)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn aliyun_remove_tags(
        &mut self,
        project: &ProjectId,
        resource_id: &str,
        keys: Option<&[String]>,
    ) -> StoreResult<()> {
        match keys {
            None => {
                sqlx::query("DELETE FROM aliyun_tags WHERE project_id = $1 AND resource_id = $2")
                    .bind(project.as_str())
                    .bind(resource_id)
                    .execute(self.conn())
                    .await
                    .map_err(db_err)?;
            }
            Some(keys) => {
                for chunk in keys.chunks(D::IN_CHUNK) {
                    let mut b =
                        QueryBuilder::<Db>::new("DELETE FROM aliyun_tags WHERE project_id = ");
                    b.push_bind(project.as_str().to_owned());
                    b.push(" AND resource_id = ");
                    b.push_bind(resource_id.to_owned());
                    b.push(" AND tag_key");
                    D::push_in(&mut b, chunk);
                    b.build().execute(self.conn()).await.map_err(db_err)?;
                }
            }
        }
        Ok(())
    }

    async fn aliyun_set_resource_group(
        &mut self,
        project: &ProjectId,
        resource_type: &str,
        resource_id: &str,
        group: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO aliyun_resource_groups (resource_id, project_id, resource_type, resource_group_id)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (resource_id) DO UPDATE SET resource_group_id = excluded.resource_group_id",
        )
        .bind(resource_id)
        .bind(project.as_str())
        .bind(resource_type)
        .bind(group)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn aliyun_put_tombstone(
        &mut self,
        project: &ProjectId,
        t: &AliyunTombstone,
    ) -> StoreResult<()> {
        // The deletion took this transaction's revision, so `meta` holds it.
        sqlx::query(
            "INSERT INTO aliyun_tombstones (id, kind, project_id, revision, view, hosts)
             VALUES ($1, $2, $3, (SELECT revision FROM meta WHERE id = 1), $4, $5)
             ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, view = excluded.view,
                hosts = excluded.hosts",
        )
        .bind(&t.id)
        .bind(&t.kind)
        .bind(project.as_str())
        .bind(t.view.to_string())
        .bind(serde_json::to_string(&t.hosts).expect("strings serialise"))
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }
}
