-- tmirror PostgreSQL schema, version 2: tenancy, as SQLite's migration 0005 (see there).
-- Append-only like every migration.

ALTER TABLE projects ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN quotas TEXT NOT NULL DEFAULT '{}';

ALTER TABLE credentials ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
UPDATE credentials SET role = 'operator' WHERE is_admin;
ALTER TABLE credentials ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE credentials ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE credentials ADD COLUMN last_used_at BIGINT;
CREATE INDEX credentials_project ON credentials (project_id);

ALTER TABLE meta ADD COLUMN auth_revision BIGINT NOT NULL DEFAULT 0;

CREATE TABLE hosts (
    host_id    TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    enabled    BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE networks (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    project_id TEXT REFERENCES projects (id),
    cidrs      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ports_network ON ports (network_id);
