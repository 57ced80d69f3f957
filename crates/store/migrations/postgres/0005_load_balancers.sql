-- Load balancers as session targets (issue 15): the same as SQLite's 0008.
--
-- A load balancer's members share a session's copies, each flow to one member. Members are
-- rows of their own in the order they were added (`position`), replaced as a set with their
-- load balancer. The health monitor (NULL: none) and what the faces keep without acting on it
-- (`kept`) are JSON text.
CREATE TABLE load_balancers (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    project_id       TEXT NOT NULL REFERENCES projects (id),
    name             TEXT NOT NULL,
    description      TEXT NOT NULL,
    vip_address      TEXT,
    admin_state_up   BOOLEAN NOT NULL,
    health_monitor   TEXT,
    kept             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    revision         BIGINT NOT NULL,
    created_revision BIGINT NOT NULL
);
CREATE INDEX load_balancers_project ON load_balancers (project_id, seq);

CREATE TABLE load_balancer_members (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    load_balancer_id TEXT NOT NULL REFERENCES load_balancers (id) ON DELETE CASCADE,
    project_id       TEXT NOT NULL REFERENCES projects (id),
    position         BIGINT NOT NULL,
    name             TEXT NOT NULL,
    address          TEXT NOT NULL,
    port             BIGINT NOT NULL,
    weight           BIGINT NOT NULL,
    admin_state_up   BOOLEAN NOT NULL,
    operating_status TEXT NOT NULL,
    port_id          TEXT,
    subnet_id        TEXT NOT NULL,
    CONSTRAINT load_balancer_members_endpoint UNIQUE (load_balancer_id, address, port)
);
CREATE INDEX load_balancer_members_lb ON load_balancer_members (load_balancer_id, position);
CREATE INDEX load_balancer_members_project ON load_balancer_members (project_id, seq);

-- Which server runs the health checks, until when (Unix seconds): one row, taken when free or
-- expired, renewed by its holder (docs/load-balancers.md, "One health authority").
CREATE TABLE health_lease (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
