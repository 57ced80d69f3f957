-- Storage at scale (issue 14; the same as SQLite's 0012): each project's number of resources of each kind, kept exact by
-- triggers in the transaction that inserts or deletes the resource (also when a cascade
-- deletes it: a load balancer's members, a filter's rules), so that the quota check of every
-- create and Alibaba's unconditioned TotalCount read one row instead of counting the
-- project's resources (1.6 ms per create at 25,000 sessions, inside the serialised write
-- transaction). `kind` is the table's name. A transaction that fails rolls its counts back
-- with everything else. Triggers rather than code in each write: every path that adds or
-- removes a row (upserts, cascades, a project's deletion) is covered by construction, and an
-- upsert that updates an existing row fires no INSERT trigger.
CREATE TABLE project_counts (
    project_id TEXT NOT NULL REFERENCES projects (id),
    kind       TEXT NOT NULL,
    n          BIGINT NOT NULL,
    PRIMARY KEY (project_id, kind)
);

-- Writers are serialised by the revision row's lock, so the counter row adds no contention.
CREATE FUNCTION project_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO project_counts (project_id, kind, n) VALUES (NEW.project_id, TG_TABLE_NAME, 1)
            ON CONFLICT (project_id, kind) DO UPDATE SET n = project_counts.n + 1;
    ELSE
        UPDATE project_counts SET n = n - 1
            WHERE project_id = OLD.project_id AND kind = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER sessions_counted AFTER INSERT OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION project_counts_follow();
CREATE TRIGGER filters_counted AFTER INSERT OR DELETE ON filters
    FOR EACH ROW EXECUTE FUNCTION project_counts_follow();
CREATE TRIGGER rules_counted AFTER INSERT OR DELETE ON rules
    FOR EACH ROW EXECUTE FUNCTION project_counts_follow();
CREATE TRIGGER ports_counted AFTER INSERT OR DELETE ON ports
    FOR EACH ROW EXECUTE FUNCTION project_counts_follow();
CREATE TRIGGER load_balancers_counted AFTER INSERT OR DELETE ON load_balancers
    FOR EACH ROW EXECUTE FUNCTION project_counts_follow();
CREATE TRIGGER load_balancer_members_counted AFTER INSERT OR DELETE ON load_balancer_members
    FOR EACH ROW EXECUTE FUNCTION project_counts_follow();
CREATE TRIGGER eips_counted AFTER INSERT OR DELETE ON eips
    FOR EACH ROW EXECUTE FUNCTION project_counts_follow();

-- What is stored already.
INSERT INTO project_counts (project_id, kind, n)
    SELECT project_id, 'sessions', count(*) FROM sessions GROUP BY project_id;
INSERT INTO project_counts (project_id, kind, n)
    SELECT project_id, 'filters', count(*) FROM filters GROUP BY project_id;
INSERT INTO project_counts (project_id, kind, n)
    SELECT project_id, 'rules', count(*) FROM rules GROUP BY project_id;
INSERT INTO project_counts (project_id, kind, n)
    SELECT project_id, 'ports', count(*) FROM ports GROUP BY project_id;
INSERT INTO project_counts (project_id, kind, n)
    SELECT project_id, 'load_balancers', count(*) FROM load_balancers GROUP BY project_id;
INSERT INTO project_counts (project_id, kind, n)
    SELECT project_id, 'load_balancer_members', count(*) FROM load_balancer_members GROUP BY project_id;
INSERT INTO project_counts (project_id, kind, n)
    SELECT project_id, 'eips', count(*) FROM eips GROUP BY project_id;
