-- tmirror SQLite schema, version 2: data only the Alibaba Cloud face has (docs/aliyun.md).
-- Append-only like every migration. Nothing here is needed by the data plane, so none of these
-- writes bump the global revision.

-- Projects (Alibaba accounts) that called OpenTrafficMirrorService.
CREATE TABLE aliyun_service (
    project_id TEXT PRIMARY KEY REFERENCES projects (id),
    opened_at  INTEGER NOT NULL
);

-- Signature nonces seen within the timestamp window, per access key. A row may be removed
-- once expires_at (the signed timestamp + the allowed skew) has passed: a request carrying
-- that nonce would then be refused for its timestamp anyway.
CREATE TABLE aliyun_nonces (
    access_key TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (access_key, nonce)
);
CREATE INDEX aliyun_nonces_expiry ON aliyun_nonces (expires_at);

-- ClientToken records: the fingerprint of the first request that used the token and the
-- answer it got (JSON without RequestId).
CREATE TABLE aliyun_client_tokens (
    project_id  TEXT NOT NULL REFERENCES projects (id),
    token       TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (project_id, token)
);
CREATE INDEX aliyun_client_tokens_age ON aliyun_client_tokens (created_at);

-- Tags of sessions and filters; resource_type is 'session' or 'filter', resource_id the
-- canonical id. seq keeps the order tags were first set in.
CREATE TABLE aliyun_tags (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    TEXT NOT NULL REFERENCES projects (id),
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    tag_key       TEXT NOT NULL,
    tag_value     TEXT NOT NULL,
    UNIQUE (resource_id, tag_key)
);
CREATE INDEX aliyun_tags_project ON aliyun_tags (project_id, resource_type);

-- Resource group of a session or filter; a resource without a row is in the default group.
CREATE TABLE aliyun_resource_groups (
    resource_id       TEXT PRIMARY KEY,
    project_id        TEXT NOT NULL REFERENCES projects (id),
    resource_type     TEXT NOT NULL,
    resource_group_id TEXT NOT NULL
);
CREATE INDEX aliyun_resource_groups_project ON aliyun_resource_groups (project_id, resource_type);

-- The extras go with their resource, in the deleting transaction, whichever face deleted it.
CREATE TRIGGER aliyun_session_deleted AFTER DELETE ON sessions
BEGIN
    DELETE FROM aliyun_tags WHERE resource_id = OLD.id;
    DELETE FROM aliyun_resource_groups WHERE resource_id = OLD.id;
END;

CREATE TRIGGER aliyun_filter_deleted AFTER DELETE ON filters
BEGIN
    DELETE FROM aliyun_tags WHERE resource_id = OLD.id;
    DELETE FROM aliyun_resource_groups WHERE resource_id = OLD.id;
END;
