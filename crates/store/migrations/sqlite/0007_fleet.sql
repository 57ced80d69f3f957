-- Fleet scale (issue 14).
--
-- Which hosts each committed revision can concern: a write transaction records the scope of
-- every host whose desired state it may change (`host:<host id>` for a bound port's host,
-- `interface:<name>` for an unbound port, captured on whichever hosts have that interface).
-- A server that sees the revision feed move reads the scopes of the new revisions and wakes
-- only those hosts' long-polls. Old revisions are forgotten in batches; `scopes_kept_after`
-- says below which revision the scopes are gone (a server that lags that far wakes every poll).
CREATE TABLE revision_scopes (
    revision INTEGER NOT NULL,
    scope    TEXT NOT NULL,
    PRIMARY KEY (revision, scope)
);
ALTER TABLE meta ADD COLUMN scopes_kept_after INTEGER NOT NULL DEFAULT 0;

-- The unbound ports captured by interface name, found without reading every unbound port.
CREATE INDEX ports_unbound_interface
    ON ports (COALESCE(json_extract(binding_profile, '$.interface_name'), 'tap' || substr(id, 1, 11)))
    WHERE host_id = '';
