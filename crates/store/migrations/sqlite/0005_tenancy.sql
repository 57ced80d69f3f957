-- tmirror SQLite schema, version 5: tenancy (docs/security.md). Projects get names and quota
-- overrides, credentials roles and a life cycle, hosts their own credentials (stored hashed),
-- and networks give addresses an owner. Append-only like every migration.

ALTER TABLE projects ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN quotas TEXT NOT NULL DEFAULT '{}';  -- JSON QuotaOverrides

-- role: operator, admin, member or reader; the first-start credential is the operator.
ALTER TABLE credentials ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
UPDATE credentials SET role = 'operator' WHERE is_admin;
ALTER TABLE credentials ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE credentials ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
-- Unix seconds of the last signed request, written at most once a minute per key.
ALTER TABLE credentials ADD COLUMN last_used_at INTEGER;
CREATE INDEX credentials_project ON credentials (project_id);

-- The revision of the last change to credentials, hosts or projects: the servers' credential
-- caches drop what they hold when it moves.
ALTER TABLE meta ADD COLUMN auth_revision INTEGER NOT NULL DEFAULT 0;

-- Enrolled agent hosts; token_hash is the hex SHA-256 of the host's bearer token.
CREATE TABLE hosts (
    host_id    TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    enabled    INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- Networks: project_id NULL is a network the operator shares with every project. cidrs is a
-- JSON array; no two networks overlap (checked by the service).
CREATE TABLE networks (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    project_id TEXT REFERENCES projects (id),
    cidrs      TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX ports_network ON ports (network_id);

