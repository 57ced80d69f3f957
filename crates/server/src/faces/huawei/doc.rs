//! The OpenAPI 3 document of the face, built from the handlers' `#[utoipa::path]` annotations
//! and the `ToSchema` derives of the request options and views (see `router` in `mod.rs`, which
//! registers routes and documentation together). Served at `GET /openapi.json` and checked in
//! as `docs/openapi.json`.

use std::borrow::Cow;
use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn, ParameterStyle};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{KnownFormat, RefOr, Required, SchemaFormat};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::query::Kind;

/// Name of the security scheme in the document (also spelled out in `security(...)` below,
/// which takes only a literal).
pub const SIGNATURE: &str = "sdk_hmac_sha256";

/// Tags, one per resource.
pub const SESSIONS: &str = "traffic mirror sessions";
pub const FILTERS: &str = "traffic mirror filters";
pub const RULES: &str = "traffic mirror filter rules";
pub const PORTS: &str = "ports";
pub const EIPS: &str = "elastic IPs";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tmirror: Huawei Cloud VPC traffic mirroring (v3) and ports (v1)",
        description = "The Huawei face of tmirror's control plane: the VPC v3 traffic-mirroring \
API and the v1 ports API, as Huawei's SDK (`huaweicloudsdkvpc`) and Terraform use them. \
Requests are signed with SDK-HMAC-SHA256 or SDK-HMAC-SM3. v3 errors have the body \
`{\"request_id\", \"error_code\", \"error_msg\"}`, v1 (port) errors `{\"code\", \"message\"}` \
with the same values again as `error_code`/`error_msg` and the `request_id`; \
error codes are listed in docs/huawei-errors.md. Every response carries `X-Request-Id`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&Signature),
    security(("sdk_hmac_sha256" = [])),
    tags(
        (name = SESSIONS, description = "Traffic mirror sessions: which ports are mirrored, through which filter, to which target."),
        (name = FILTERS, description = "Traffic mirror filters; each embeds its ingress and egress rules."),
        (name = RULES, description = "Traffic mirror filter rules: a top-level collection; the filter id travels in the body."),
        (name = PORTS, description = "v1 ports (ENIs): the sources and `eni` targets of sessions."),
        (name = EIPS, description = "v1 elastic IPs: public addresses from the operator's pools, the sources of `eip` sessions."),
    ),
    components(schemas(V3Error, V1Error)),
)]
pub struct ApiDoc;

/// Adds the SDK-HMAC-SHA256 security scheme.
struct Signature;

impl Modify for Signature {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SIGNATURE,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "Huawei's SDK-HMAC-SHA256 signature, as the official SDKs send it: \
`Authorization: SDK-HMAC-SHA256 Access=<access key>, SignedHeaders=<;-separated lowercase \
names>, Signature=<hex HMAC-SHA256>`, with the signed header `X-Sdk-Date: YYYYMMDDTHHMMSSZ` \
(within 15 minutes of the server's clock) and `host`. The signature is the HMAC-SHA256, keyed \
with the secret key, of `SDK-HMAC-SHA256\\n<X-Sdk-Date>\\n<hex SHA-256 of the canonical request>`; \
the canonical request is `<METHOD>\\n<percent-encoded path ending in />\\n<query pairs sorted \
by key, then value>\\n<name:value\\n for each signed header>\\n<signed headers>\\n<hex SHA-256 of \
the body>`. A missing or wrong signature, an unknown \
access key or a skewed date is answered with 401 `APIGW.0301`; a credential of another project \
than the path's with 403 `VPC.0007`. `SDK-HMAC-SM3` (Huawei's SM3 signer) is the same scheme \
with SM3 in place of SHA-256 for both the hashes and the HMAC.",
            ))),
        );
    }
}

/// The v3 error body.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // documents what `crate::http::ApiError` renders
pub struct V3Error {
    /// The request id, as in `X-Request-Id`.
    request_id: String,
    /// `VPC.xxxx` (or `APIGW.0301` for authentication failures); see docs/huawei-errors.md.
    #[schema(example = "VPC.0101")]
    error_code: String,
    /// What is wrong, naming the offending field.
    error_msg: String,
}

/// The v1 (ports) error body.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // documents what `crate::http::ApiError` renders
pub struct V1Error {
    /// `VPC.xxxx`; see docs/huawei-errors.md.
    #[schema(example = "VPC.1704")]
    code: String,
    /// What is wrong, naming the offending field.
    message: String,
}

/// An integer that may also arrive as a decimal string (`96` or `"96"`), as the SDK and
/// Terraform send them; see `input::lenient_int`.
pub struct LenientInteger;

impl PartialSchema for LenientInteger {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Integer))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^\s*[+-]?[0-9]+\s*$")),
            )
            .description(Some(
                "An integer, or a string holding one in decimal (surrounding spaces allowed).",
            ))
            .into()
    }
}

impl ToSchema for LenientInteger {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("LenientInteger")
    }
}

/// A boolean that may also arrive as the string `"true"` or `"false"` in any letter case; see
/// `input::lenient_bool`.
pub struct LenientBoolean;

impl PartialSchema for LenientBoolean {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^\s*([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])\s*$")),
            )
            .description(Some(
                "A boolean, or the string \"true\" or \"false\" in any letter case.",
            ))
            .into()
    }
}

impl ToSchema for LenientBoolean {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("LenientBoolean")
    }
}

fn kind_schema(kind: Kind) -> ObjectBuilder {
    match kind {
        Kind::Text => ObjectBuilder::new().schema_type(Type::String),
        Kind::Int => ObjectBuilder::new().schema_type(Type::Integer),
        Kind::Bool => ObjectBuilder::new().schema_type(Type::Boolean),
        Kind::Time => ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
    }
}

/// A repeatable query parameter: `?key=a&key=b`.
pub fn repeatable(name: &str, item: ObjectBuilder, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ArrayBuilder::new().items(item)))
        .style(Some(ParameterStyle::Form))
        .explode(Some(true))
        .build()
}

/// The query parameters of a list: its filter keys (from the same table the handler matches
/// with), then `limit` and `marker`.
pub fn list_parameters<F>(fields: &[(&str, F, Kind)], max_limit: u32) -> Vec<Parameter> {
    let mut params: Vec<Parameter> = fields
        .iter()
        .map(|&(key, _, kind)| {
            let what = match kind {
                Kind::Time => "Exact match on a time like 2023-02-23T06:57:39Z",
                _ => "Exact match",
            };
            repeatable(
                key,
                kind_schema(kind),
                &format!(
                    "{what}; repeat the key to match any of several values. Different keys \
must all match."
                ),
            )
        })
        .collect();
    params.push(
        ParameterBuilder::new()
            .name("limit")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(format!(
                "Records per page, 0 to {max_limit}; 0 or absent means 2000."
            )))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(max_limit)),
            ))
            .build(),
    );
    params.push(
        ParameterBuilder::new()
            .name("marker")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(
                "Id of the last record of the previous page; the page starts after it. \
Empty or absent means the first page.",
            ))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build(),
    );
    params
}

/// Adds `extra` to the parameters of the GET operation at `path`.
pub fn add_get_parameters(
    openapi: &mut utoipa::openapi::OpenApi,
    path: &str,
    extra: Vec<Parameter>,
) {
    let op = openapi
        .paths
        .paths
        .get_mut(path)
        .and_then(|item| item.get.as_mut())
        .unwrap_or_else(|| panic!("GET {path} is routed"));
    op.parameters.get_or_insert_with(Vec::new).extend(extra);
}

/// The document, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut text = super::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes");
        text.push('\n');
        text
    })
}

/// `GET /openapi.json`, served without authentication.
pub async fn serve() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document(),
    )
        .into_response()
}

/// The project in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // documents the handlers' `Path` extractors
pub struct ProjectPath {
    /// Project id: 32 lowercase hex characters; must be the signing credential's project.
    project_id: String,
}

/// A traffic mirror session in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct SessionPath {
    /// Project id: 32 lowercase hex characters; must be the signing credential's project.
    project_id: String,
    /// Traffic mirror session id (UUID).
    traffic_mirror_session_id: String,
}

/// A traffic mirror filter in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct FilterPath {
    /// Project id: 32 lowercase hex characters; must be the signing credential's project.
    project_id: String,
    /// Traffic mirror filter id (UUID).
    traffic_mirror_filter_id: String,
}

/// A traffic mirror filter rule in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct RulePath {
    /// Project id: 32 lowercase hex characters; must be the signing credential's project.
    project_id: String,
    /// Traffic mirror filter rule id (UUID).
    traffic_mirror_filter_rule_id: String,
}

/// A port in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct PortPath {
    /// Project id: 32 lowercase hex characters; must be the signing credential's project.
    project_id: String,
    /// Port id (UUID).
    port_id: String,
}

/// An elastic IP in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct EipPath {
    /// Project id: 32 lowercase hex characters; must be the signing credential's project.
    project_id: String,
    /// Elastic IP id (UUID).
    publicip_id: String,
}
