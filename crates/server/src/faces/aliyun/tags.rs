//! OpenTrafficMirrorService, GetTrafficMirrorServiceStatus, tags and resource groups.

use std::collections::HashMap;

use serde_json::{json, Value};
use tmirror_model::{FilterId, ProjectId, ResourceKind, SessionId, Timestamp};
use tmirror_store::{tag_pair, AliyunExtras, AliyunTag, Condition, Value as Q};

use super::error::{bad, from_service, illegal, missing, not_found};
use super::{ids, ok, Begun, Ctx, Write};
use crate::http::ApiError;
use crate::service::Service;

/// Resource types as stored.
pub const SESSION: &str = "session";
pub const FILTER: &str = "filter";

/// The group of a resource nobody moved.
pub const DEFAULT_GROUP: &str = "rg-default";

const MAX_TAGS: usize = 20;

pub async fn open_service(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let mut w = match Write::begin(ctx, false).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    let opened = w
        .records()
        .aliyun_open_service(ctx.project(), Timestamp::now().0)
        .await
        .map_err(|e| from_service(e.into()))?;
    if !opened {
        return Err(bad(
            "ORDER.OPEND",
            "The traffic mirror service is already open for this account.",
        ));
    }
    w.finish(ctx, json!({"Code": "200", "Message": "successful"}))
        .await
}

pub async fn service_status(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let opened = ctx
        .st
        .service
        .aliyun_service_opened(ctx.project())
        .await
        .map_err(from_service)?;
    Ok(json!({"Enabled": opened}))
}

/// `Tag.N.Key`/`Tag.N.Value` (or `Tags.N.*` on lists), checked as §4 of the reference says;
/// every item needs a key, a value may be absent (`None`) or empty.
pub fn parse_tags(ctx: &Ctx<'_>, name: &str) -> Result<Vec<(String, Option<String>)>, ApiError> {
    let items = ctx.p.objects(name)?;
    if items.len() > MAX_TAGS {
        return Err(bad(
            "QuotaExceeded.TagNum",
            format!("At most {MAX_TAGS} tags, not {}.", items.len()),
        ));
    }
    let mut tags: Vec<(String, Option<String>)> = Vec::new();
    for (i, fields) in items {
        let key = fields
            .get("Key")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| missing(&format!("{name}.{i}.Key")))?;
        check_tag_text(
            &format!("{name}.{i}.Key"),
            key,
            "InvalidTagKey.Malformed",
            false,
        )?;
        let value = fields.get("Value").cloned();
        if let Some(v) = &value {
            check_tag_text(
                &format!("{name}.{i}.Value"),
                v,
                "InvalidTagValue.Malformed",
                true,
            )?;
        }
        if tags.iter().any(|(k, _)| k == key) {
            return Err(bad(
                "DuplicatedParam.TagKey",
                format!("The tag key {key:?} is given more than once."),
            ));
        }
        tags.push((key.clone(), value));
    }
    Ok(tags)
}

fn check_tag_text(name: &str, v: &str, code: &str, may_be_empty: bool) -> Result<(), ApiError> {
    let n = v.chars().count();
    let why = if (!may_be_empty && n == 0) || n > 128 {
        Some("must be 1 to 128 characters")
    } else if v.starts_with("aliyun") || v.starts_with("acs:") {
        Some("must not start with aliyun or acs:")
    } else if v.contains("http://") || v.contains("https://") {
        Some("must not contain http:// or https://")
    } else if v.contains(char::is_control) {
        // Also what lets the store match a key and value as one string (`tag_pair`).
        Some("must not contain control characters")
    } else {
        None
    };
    match why {
        Some(why) => Err(bad(
            code,
            format!("The specified {name} {v:?} is not valid: {why}."),
        )),
        None => Ok(()),
    }
}

/// The resource group a create asks for (any non-empty id up to 64 characters).
pub fn parse_group(ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, ApiError> {
    match ctx.p.get(name) {
        Some(g) if g.len() > 64 || g.contains(char::is_whitespace) => Err(illegal(
            name,
            "a resource group id has at most 64 characters and no spaces",
        )),
        other => Ok(other.map(str::to_owned)),
    }
}

/// Adds tags to a resource in the write's transaction; at most 20 per resource.
pub async fn add_tags(
    w: &mut Write,
    project: &ProjectId,
    resource_type: &str,
    resource_id: &str,
    tags: &[(String, Option<String>)],
) -> Result<(), ApiError> {
    if tags.is_empty() {
        return Ok(());
    }
    let tx = w.records();
    let existing = tx
        .aliyun_tags(project, resource_type)
        .await
        .map_err(|e| from_service(e.into()))?;
    let mut keys: Vec<&str> = existing
        .iter()
        .filter(|t| t.resource_id == resource_id)
        .map(|t| t.key.as_str())
        .collect();
    for (k, _) in tags {
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    if keys.len() > MAX_TAGS {
        return Err(bad(
            "QuotaExceeded.TagNum",
            format!("A resource has at most {MAX_TAGS} tags."),
        ));
    }
    for (key, value) in tags {
        tx.aliyun_set_tag(
            project,
            &AliyunTag {
                resource_type: resource_type.to_owned(),
                resource_id: resource_id.to_owned(),
                key: key.clone(),
                value: value.clone().unwrap_or_default(),
            },
        )
        .await
        .map_err(|e| from_service(e.into()))?;
    }
    Ok(())
}

/// The fields a list narrows by resource group and tags with (sessions' or filters').
pub struct NarrowingFields<F> {
    pub group: F,
    pub group_absent_or: F,
    pub tag_key: F,
    pub tag_pair: F,
}

/// `ResourceGroupId` and `Tag.N` of a list as store conditions, so that the store pages the
/// narrowed list itself: no list reads the whole project.
pub fn narrowing<F: Copy>(
    group: Option<&str>,
    wanted: &[(String, Option<String>)],
    fields: &NarrowingFields<F>,
) -> Vec<Condition<F>> {
    let mut conditions = Vec::new();
    if let Some(g) = group {
        // A resource nobody moved has no group row and is in the default group.
        let field = if g == DEFAULT_GROUP {
            fields.group_absent_or
        } else {
            fields.group
        };
        conditions.push(Condition {
            field,
            values: vec![Q::Text(g.to_owned())],
        });
    }
    for (key, value) in wanted {
        conditions.push(match value {
            None => Condition {
                field: fields.tag_key,
                values: vec![Q::Text(key.clone())],
            },
            Some(v) => Condition {
                field: fields.tag_pair,
                values: vec![Q::Text(tag_pair(key, v))],
            },
        });
    }
    conditions
}

/// Tags and resource groups of a project's resources of one type, by canonical id.
#[derive(Default)]
pub struct Extras {
    pub tags: HashMap<String, Vec<(String, String)>>,
    pub groups: HashMap<String, String>,
}

impl Extras {
    pub async fn load(
        service: &Service,
        project: &ProjectId,
        resource_type: &str,
    ) -> Result<Extras, ApiError> {
        let tags = service.aliyun_tags(project, resource_type).await;
        let groups = service.aliyun_resource_groups(project, resource_type).await;
        Ok(Extras::new(
            tags.map_err(from_service)?,
            groups.map_err(from_service)?,
        ))
    }

    /// Those of the resources with these canonical ids only (a list page's, one resource's).
    pub async fn load_of(
        service: &Service,
        project: &ProjectId,
        resource_type: &str,
        ids: &[String],
    ) -> Result<Extras, ApiError> {
        let extras = service.aliyun_extras_of(project, resource_type, ids).await;
        let extras = extras.map_err(from_service)?;
        Ok(Extras::from_records(extras))
    }

    /// Those of the resources with these canonical ids, read in a write's transaction.
    pub async fn load_in(
        w: &mut Write,
        project: &ProjectId,
        resource_type: &str,
        ids: &[String],
    ) -> Result<Extras, ApiError> {
        let extras = w
            .records()
            .aliyun_extras_of(project, resource_type, ids)
            .await;
        let extras = extras.map_err(|e| from_service(e.into()))?;
        Ok(Extras::from_records(extras))
    }

    /// Those the store read for some resources.
    pub fn from_records(records: AliyunExtras) -> Extras {
        Extras::new(records.tags, records.groups)
    }

    fn new(all: Vec<AliyunTag>, groups: Vec<(String, String)>) -> Extras {
        let mut tags: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for t in all {
            tags.entry(t.resource_id)
                .or_default()
                .push((t.key, t.value));
        }
        Extras {
            tags,
            groups: groups.into_iter().collect(),
        }
    }

    pub fn group(&self, id: &str) -> &str {
        self.groups
            .get(id)
            .map(String::as_str)
            .unwrap_or(DEFAULT_GROUP)
    }

    /// The resource's tags, `(key, value)`, in the order they were added.
    pub fn tags_of(&self, id: &str) -> &[(String, String)] {
        self.tags.get(id).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn tags_json(&self, id: &str) -> Value {
        Value::Array(
            self.tags_of(id)
                .iter()
                .map(|(k, v)| json!({"Key": k, "Value": v}))
                .collect(),
        )
    }

    /// Whether the resource has every `(key, value)` of a list filter (a value of `None`
    /// matches any value of the key).
    pub fn matches(&self, id: &str, wanted: &[(String, Option<String>)]) -> bool {
        let have = self.tags.get(id);
        wanted.iter().all(|(k, v)| {
            have.is_some_and(|have| {
                have.iter()
                    .any(|(hk, hv)| hk == k && v.as_ref().is_none_or(|v| v == hv))
            })
        })
    }
}

/// `ResourceType` of the tag operations, any case.
fn resource_kind(ctx: &Ctx<'_>) -> Result<ResourceKind, ApiError> {
    let t = ctx.p.required("ResourceType")?;
    match t.to_ascii_lowercase().as_str() {
        "trafficmirrorsession" => Ok(ResourceKind::Session),
        "trafficmirrorfilter" => Ok(ResourceKind::Filter),
        _ => Err(illegal(
            "ResourceType",
            format!(
                "{t:?}: the resource types here are TRAFFICMIRRORSESSION and TRAFFICMIRRORFILTER"
            ),
        )),
    }
}

fn stored_type(kind: ResourceKind) -> &'static str {
    if kind == ResourceKind::Session {
        SESSION
    } else {
        FILTER
    }
}

/// The canonical id of an existing resource, checked in the write's transaction.
async fn existing(
    ctx: &Ctx<'_>,
    w: &mut Write,
    kind: ResourceKind,
    id: &str,
) -> Result<String, ApiError> {
    let uuid = ids::parse(kind, id).ok_or_else(|| not_found(kind, id))?;
    match kind {
        ResourceKind::Session => {
            w.service(ctx)?
                .session_show(SessionId(uuid))
                .await
                .map_err(from_service)?;
        }
        _ => {
            w.service(ctx)?
                .filter_show(FilterId(uuid))
                .await
                .map_err(from_service)?;
        }
    }
    Ok(uuid.hyphenated().to_string())
}

fn resource_ids(ctx: &Ctx<'_>) -> Result<Vec<String>, ApiError> {
    let ids = ctx.p.list("ResourceId")?;
    if ids.len() > 50 {
        return Err(illegal("ResourceId", "at most 50 resource ids"));
    }
    Ok(ids)
}

pub async fn tag(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let kind = resource_kind(ctx)?;
    let ids = resource_ids(ctx)?;
    if ids.is_empty() {
        return Err(missing("ResourceId.N"));
    }
    let tags = parse_tags(ctx, "Tag")?;
    if tags.is_empty() {
        return Err(missing("Tag.N.Key"));
    }
    let mut w = match Write::begin(ctx, false).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    for id in &ids {
        let canonical = existing(ctx, &mut w, kind, id).await?;
        add_tags(&mut w, ctx.project(), stored_type(kind), &canonical, &tags).await?;
    }
    w.finish(ctx, ok()).await
}

pub async fn untag(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let kind = resource_kind(ctx)?;
    let ids = resource_ids(ctx)?;
    if ids.is_empty() {
        return Err(missing("ResourceId.N"));
    }
    let keys = ctx.p.list("TagKey")?;
    if keys.len() > MAX_TAGS {
        return Err(illegal("TagKey", "at most 20 tag keys"));
    }
    let all = ctx.p.bool("All")?.unwrap_or(false);
    if keys.is_empty() && !all {
        return Err(missing("TagKey.N"));
    }
    let mut w = match Write::begin(ctx, false).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    for id in &ids {
        let canonical = existing(ctx, &mut w, kind, id).await?;
        let which = if keys.is_empty() {
            None
        } else {
            Some(keys.as_slice())
        };
        w.records()
            .aliyun_remove_tags(ctx.project(), &canonical, which)
            .await
            .map_err(|e| from_service(e.into()))?;
    }
    w.finish(ctx, ok()).await
}

pub async fn list(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let kind = resource_kind(ctx)?;
    let ids = resource_ids(ctx)?;
    let wanted = parse_tags(ctx, "Tag")?;
    if ids.is_empty() && wanted.is_empty() {
        return Err(missing("ResourceId.N"));
    }
    let max = ctx.p.int_within("MaxResults", 1..=50)?.unwrap_or(50) as usize;
    let offset = match ctx.p.get("NextToken") {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| illegal("NextToken", "not a token this endpoint handed out"))?,
    };
    let stype = stored_type(kind);
    let extras = Extras::load(&ctx.st.service, ctx.project(), stype).await?;
    let canonical: Vec<Option<String>> = ids
        .iter()
        .map(|i| ids::parse(kind, i).map(|u| u.hyphenated().to_string()))
        .collect();
    let all = ctx
        .st
        .service
        .aliyun_tags(ctx.project(), stype)
        .await
        .map_err(from_service)?;
    let shown_type = if kind == ResourceKind::Session {
        "TRAFFICMIRRORSESSION"
    } else {
        "TRAFFICMIRRORFILTER"
    };
    let rows: Vec<Value> = all
        .iter()
        .filter(|t| ids.is_empty() || canonical.iter().flatten().any(|c| *c == t.resource_id))
        .filter(|t| extras.matches(&t.resource_id, &wanted))
        .map(|t| {
            let shown = t
                .resource_id
                .parse::<uuid::Uuid>()
                .map(|u| ids::show(kind, u))
                .unwrap_or_else(|_| t.resource_id.clone());
            json!({"ResourceId": shown, "ResourceType": shown_type, "TagKey": t.key, "TagValue": t.value})
        })
        .collect();
    let total = rows.len();
    let page: Vec<Value> = rows.into_iter().skip(offset).take(max).collect();
    let next = if offset + page.len() < total {
        (offset + page.len()).to_string()
    } else {
        String::new()
    };
    Ok(json!({"NextToken": next, "TagResources": {"TagResource": page}}))
}

pub async fn move_group(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let kind = resource_kind(ctx)?;
    let id = ctx.p.required("ResourceId")?;
    ctx.p.required("NewResourceGroupId")?;
    let group = parse_group(ctx, "NewResourceGroupId")?.expect("required above");
    let mut w = match Write::begin(ctx, false).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    let canonical = existing(ctx, &mut w, kind, id).await?;
    w.records()
        .aliyun_set_resource_group(ctx.project(), stored_type(kind), &canonical, &group)
        .await
        .map_err(|e| from_service(e.into()))?;
    w.finish(ctx, ok()).await
}
