-- tmirror PostgreSQL schema, version 1: the same data as SQLite's migrations 0001..0004, in
-- PostgreSQL's types. Migrations are append-only: never edit a released file.
--
-- Text columns that lists or documents are ordered by compare bytewise (COLLATE "C" in the
-- queries), so both back-ends order alike whatever the database's default collation.
-- JSON values are stored as TEXT, exactly as the service wrote them; queries cast to jsonb.

-- One row: the global revision, bumped by every committed write transaction. Write
-- transactions take an EXCLUSIVE lock on this table first (see src/postgres/mod.rs).
CREATE TABLE meta (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);
INSERT INTO meta (id, revision) VALUES (1, 0);

CREATE TABLE projects (
    id         TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE credentials (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    access_key TEXT PRIMARY KEY,
    secret_key TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id),
    is_admin   BOOLEAN NOT NULL DEFAULT FALSE
);

-- seq gives every resource a stable creation order for pagination.
CREATE TABLE ports (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    project_id      TEXT NOT NULL REFERENCES projects (id),
    name            TEXT NOT NULL,
    network_id      TEXT NOT NULL,
    admin_state_up  BOOLEAN NOT NULL,
    mac_address     TEXT NOT NULL,
    fixed_ips       TEXT NOT NULL,  -- JSON array of {subnet_id, ip_address}
    device_id       TEXT NOT NULL,
    device_owner    TEXT NOT NULL,
    status          TEXT NOT NULL,
    security_groups TEXT NOT NULL,  -- JSON array of strings
    host_id         TEXT NOT NULL,
    binding_profile TEXT NOT NULL,  -- JSON {interface_name, capture_side}
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    revision        BIGINT NOT NULL
);
CREATE INDEX ports_project ON ports (project_id, seq);
CREATE INDEX ports_host ON ports (host_id);

CREATE TABLE filters (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    project_id       TEXT NOT NULL REFERENCES projects (id),
    name             TEXT NOT NULL,
    description      TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    revision         BIGINT NOT NULL,
    created_revision BIGINT NOT NULL
);
CREATE INDEX filters_project ON filters (project_id, seq);

CREATE TABLE rules (
    seq                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                     TEXT NOT NULL UNIQUE,
    project_id             TEXT NOT NULL REFERENCES projects (id),
    filter_id              TEXT NOT NULL REFERENCES filters (id) ON DELETE CASCADE,
    direction              TEXT NOT NULL,
    priority               BIGINT NOT NULL,
    action                 TEXT NOT NULL,
    ethertype              TEXT NOT NULL,
    protocol               TEXT NOT NULL,
    protocol_spelling      TEXT NOT NULL,
    source_cidr            TEXT,
    destination_cidr       TEXT,
    source_port_range      TEXT,
    destination_port_range TEXT,
    description            TEXT NOT NULL,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    revision               BIGINT NOT NULL,
    created_revision       BIGINT NOT NULL,
    CONSTRAINT rules_priority UNIQUE (filter_id, direction, priority)
);
CREATE INDEX rules_project ON rules (project_id, seq);

CREATE TABLE sessions (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    project_id       TEXT NOT NULL REFERENCES projects (id),
    name             TEXT NOT NULL,
    description      TEXT NOT NULL,
    filter_id        TEXT NOT NULL REFERENCES filters (id),
    target_id        TEXT NOT NULL,
    target_type      TEXT NOT NULL,
    vni              BIGINT NOT NULL,
    packet_length    BIGINT NOT NULL,
    priority         BIGINT NOT NULL,
    enabled          BOOLEAN NOT NULL,
    source_type      TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    revision         BIGINT NOT NULL,
    created_revision BIGINT NOT NULL,
    CONSTRAINT sessions_priority UNIQUE (project_id, priority)
);
CREATE INDEX sessions_project ON sessions (project_id, seq);
CREATE INDEX sessions_filter ON sessions (filter_id);
CREATE INDEX sessions_target ON sessions (target_id);

CREATE TABLE session_sources (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    port_id    TEXT NOT NULL REFERENCES ports (id),
    position   BIGINT NOT NULL,
    CONSTRAINT session_sources_pkey PRIMARY KEY (session_id, port_id)
);
CREATE INDEX session_sources_port ON session_sources (port_id);

-- The Alibaba Cloud face's own data (docs/aliyun.md); none of these writes bump the revision.

CREATE TABLE aliyun_service (
    project_id TEXT PRIMARY KEY REFERENCES projects (id),
    opened_at  BIGINT NOT NULL
);

-- Signature nonces seen within the timestamp window, per access key (see SQLite's 0002).
CREATE TABLE aliyun_nonces (
    access_key TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (access_key, nonce)
);
CREATE INDEX aliyun_nonces_expiry ON aliyun_nonces (expires_at);

-- ClientToken records: the fingerprint of the first request that used the token and its answer.
CREATE TABLE aliyun_client_tokens (
    project_id  TEXT NOT NULL REFERENCES projects (id),
    token       TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (project_id, token)
);
CREATE INDEX aliyun_client_tokens_age ON aliyun_client_tokens (created_at);

-- Tags of sessions and filters; seq keeps the order tags were first set in.
CREATE TABLE aliyun_tags (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
CREATE FUNCTION aliyun_forget_extras() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM aliyun_tags WHERE resource_id = OLD.id;
    DELETE FROM aliyun_resource_groups WHERE resource_id = OLD.id;
    RETURN OLD;
END;
$$;
CREATE TRIGGER aliyun_session_deleted AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION aliyun_forget_extras();
CREATE TRIGGER aliyun_filter_deleted AFTER DELETE ON filters
    FOR EACH ROW EXECUTE FUNCTION aliyun_forget_extras();

-- A session deleted while a connected agent hosting it had not applied the deletion (see
-- SQLite's 0004): listed by the Alibaba face as `Deleting` until those agents applied it.
CREATE TABLE aliyun_tombstones (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    project_id  TEXT NOT NULL,
    revision    BIGINT NOT NULL,
    view        TEXT NOT NULL,
    hosts       TEXT NOT NULL
);
CREATE INDEX aliyun_tombstones_project ON aliyun_tombstones (project_id, kind);

-- Agents: the token they authenticate with, and what each host last reported (bookkeeping,
-- not configuration: no revision bump).
CREATE TABLE agent_token (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    token TEXT NOT NULL
);

CREATE TABLE agents (
    host_id            TEXT PRIMARY KEY,
    registered_at      BIGINT NOT NULL,
    last_seen          BIGINT NOT NULL,
    applied_generation BIGINT NOT NULL,
    interfaces         TEXT NOT NULL,  -- JSON array of interface names present on the host
    report             TEXT NOT NULL   -- JSON: the agent's last status report (counters)
);
