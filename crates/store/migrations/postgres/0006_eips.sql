-- Elastic IPs (issue 16, docs/eips.md): the same as SQLite's 0009.
--
-- A pool is the operator's: public addresses (cidrs, a JSON array; no two pools overlap, checked
-- by the service) bound to a gateway host's external interface, where EIP sessions capture.
CREATE TABLE eip_pools (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    cidrs          TEXT NOT NULL,
    host_id        TEXT NOT NULL,
    interface_name TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);

-- A project's elastic IP; an address is held by one EIP at a time.
CREATE TABLE eips (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL REFERENCES projects (id),
    pool_id    TEXT NOT NULL REFERENCES eip_pools (id),
    address    TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    port_id    TEXT REFERENCES ports (id),
    bandwidth  TEXT NOT NULL,  -- JSON {id, name, size, share_type, charge_mode}
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    revision   BIGINT NOT NULL
);
CREATE INDEX eips_project ON eips (project_id, seq);
CREATE INDEX eips_pool ON eips (pool_id);
CREATE INDEX eips_port ON eips (port_id);

-- The sources of `eip` sessions (those of `eni` sessions stay in session_sources).
CREATE TABLE session_eip_sources (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    eip_id     TEXT NOT NULL REFERENCES eips (id),
    position   BIGINT NOT NULL,
    CONSTRAINT session_eip_sources_pkey PRIMARY KEY (session_id, eip_id)
);
CREATE INDEX session_eip_sources_eip ON session_eip_sources (eip_id);
