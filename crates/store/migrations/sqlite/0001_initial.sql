-- tmirror SQLite schema, version 1. Migrations are append-only: never edit a released file.

-- One row: the global revision, bumped by every committed write.
CREATE TABLE meta (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
);
INSERT INTO meta (id, revision) VALUES (1, 0);

CREATE TABLE projects (
    id         TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);

CREATE TABLE credentials (
    access_key TEXT PRIMARY KEY,
    secret_key TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id),
    is_admin   INTEGER NOT NULL DEFAULT 0
);

-- seq gives every resource a stable creation order for pagination.
CREATE TABLE ports (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    project_id      TEXT NOT NULL REFERENCES projects (id),
    name            TEXT NOT NULL,
    network_id      TEXT NOT NULL,
    admin_state_up  INTEGER NOT NULL,
    mac_address     TEXT NOT NULL,
    fixed_ips       TEXT NOT NULL,  -- JSON array of {subnet_id, ip_address}
    device_id       TEXT NOT NULL,
    device_owner    TEXT NOT NULL,
    status          TEXT NOT NULL,
    security_groups TEXT NOT NULL,  -- JSON array of strings
    host_id         TEXT NOT NULL,
    binding_profile TEXT NOT NULL,  -- JSON {interface_name, capture_side}
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    revision        INTEGER NOT NULL
);
CREATE INDEX ports_project ON ports (project_id, seq);
CREATE INDEX ports_host ON ports (host_id);

CREATE TABLE filters (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    project_id  TEXT NOT NULL REFERENCES projects (id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    revision    INTEGER NOT NULL
);
CREATE INDEX filters_project ON filters (project_id, seq);

CREATE TABLE rules (
    seq                    INTEGER PRIMARY KEY AUTOINCREMENT,
    id                     TEXT NOT NULL UNIQUE,
    project_id             TEXT NOT NULL REFERENCES projects (id),
    filter_id              TEXT NOT NULL REFERENCES filters (id) ON DELETE CASCADE,
    direction              TEXT NOT NULL,
    priority               INTEGER NOT NULL,
    action                 TEXT NOT NULL,
    ethertype              TEXT NOT NULL,
    protocol               TEXT NOT NULL,
    protocol_spelling      TEXT NOT NULL,
    source_cidr            TEXT,
    destination_cidr       TEXT,
    source_port_range      TEXT,
    destination_port_range TEXT,
    description            TEXT NOT NULL,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    revision               INTEGER NOT NULL,
    CONSTRAINT rules_priority UNIQUE (filter_id, direction, priority)
);
CREATE INDEX rules_project ON rules (project_id, seq);

CREATE TABLE sessions (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    project_id    TEXT NOT NULL REFERENCES projects (id),
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    filter_id     TEXT NOT NULL REFERENCES filters (id),
    target_id     TEXT NOT NULL,
    target_type   TEXT NOT NULL,
    vni           INTEGER NOT NULL,
    packet_length INTEGER NOT NULL,
    priority      INTEGER NOT NULL,
    enabled       INTEGER NOT NULL,
    source_type   TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    revision      INTEGER NOT NULL,
    CONSTRAINT sessions_priority UNIQUE (project_id, priority)
);
CREATE INDEX sessions_project ON sessions (project_id, seq);
CREATE INDEX sessions_filter ON sessions (filter_id);
CREATE INDEX sessions_target ON sessions (target_id);

CREATE TABLE session_sources (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    port_id    TEXT NOT NULL REFERENCES ports (id),
    position   INTEGER NOT NULL,
    PRIMARY KEY (session_id, port_id)
);
CREATE INDEX session_sources_port ON session_sources (port_id);
