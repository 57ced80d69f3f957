-- Agents: the token they authenticate with, and what each host last reported.
-- Writes here are bookkeeping, not configuration: they do not bump meta.revision.

CREATE TABLE agent_token (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    token TEXT NOT NULL
);

CREATE TABLE agents (
    host_id            TEXT PRIMARY KEY,
    registered_at      INTEGER NOT NULL,
    last_seen          INTEGER NOT NULL,
    applied_generation INTEGER NOT NULL,
    interfaces         TEXT NOT NULL,  -- JSON array of interface names present on the host
    report             TEXT NOT NULL   -- JSON: the agent's last status report (counters)
);
