-- Fleet scale (issue 14): which hosts reported an interface, by interface. The Alibaba
-- asynchronous states look up the agent of an unbound source port by the interface it must
-- report; searching every agent's JSON list for it read every agent record per request.
-- Kept by triggers on `agents`, like project_counts: every path that writes an agent's
-- interfaces (its registration, a report bringing other ones) is covered by construction.
-- DISTINCT, not only OR IGNORE: a trigger fired by an upsert's DO UPDATE runs its INSERT with
-- the upsert's conflict resolution (ABORT), so a name listed twice would fail the write.
CREATE TABLE agent_interfaces (
    interface TEXT NOT NULL,
    host_id   TEXT NOT NULL REFERENCES agents (host_id) ON DELETE CASCADE,
    PRIMARY KEY (interface, host_id)
) WITHOUT ROWID;
CREATE INDEX agent_interfaces_host ON agent_interfaces (host_id);

CREATE TRIGGER agent_interfaces_inserted AFTER INSERT ON agents BEGIN
    INSERT OR IGNORE INTO agent_interfaces (interface, host_id)
        SELECT DISTINCT j.value, NEW.host_id FROM json_each(NEW.interfaces) j;
END;

CREATE TRIGGER agent_interfaces_updated AFTER UPDATE OF interfaces ON agents
    WHEN NEW.interfaces IS NOT OLD.interfaces BEGIN
    DELETE FROM agent_interfaces WHERE host_id = NEW.host_id;
    INSERT OR IGNORE INTO agent_interfaces (interface, host_id)
        SELECT DISTINCT j.value, NEW.host_id FROM json_each(NEW.interfaces) j;
END;

INSERT OR IGNORE INTO agent_interfaces (interface, host_id)
    SELECT DISTINCT j.value, a.host_id FROM agents a, json_each(a.interfaces) j;
