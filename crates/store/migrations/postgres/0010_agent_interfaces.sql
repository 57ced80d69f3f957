-- Fleet scale (issue 14; the same as SQLite's 0013): which hosts reported an interface, by
-- interface. The Alibaba asynchronous states look up the agent of an unbound source port by
-- the interface it must report; searching every agent's JSON list for it read every agent
-- record per request. Kept by a trigger on `agents`, like project_counts: every path that
-- writes an agent's interfaces (its registration, a report bringing other ones) is covered
-- by construction.
CREATE TABLE agent_interfaces (
    interface TEXT NOT NULL,
    host_id   TEXT NOT NULL REFERENCES agents (host_id) ON DELETE CASCADE,
    PRIMARY KEY (interface, host_id)
);
CREATE INDEX agent_interfaces_host ON agent_interfaces (host_id);

CREATE FUNCTION agent_interfaces_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.interfaces IS NOT DISTINCT FROM OLD.interfaces THEN
            RETURN NULL;
        END IF;
        DELETE FROM agent_interfaces WHERE host_id = NEW.host_id;
    END IF;
    INSERT INTO agent_interfaces (interface, host_id)
        SELECT DISTINCT j.v, NEW.host_id FROM jsonb_array_elements_text(NEW.interfaces::jsonb) j(v)
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER agent_interfaces_followed AFTER INSERT OR UPDATE OF interfaces ON agents
    FOR EACH ROW EXECUTE FUNCTION agent_interfaces_follow();

INSERT INTO agent_interfaces (interface, host_id)
    SELECT DISTINCT j.v, a.host_id FROM agents a, jsonb_array_elements_text(a.interfaces::jsonb) j(v)
    ON CONFLICT DO NOTHING;
