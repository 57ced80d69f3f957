-- Storage at scale (issue 14): a list narrowed by name (Huawei's `name=`, Alibaba's
-- TrafficMirrorSessionName / TrafficMirrorFilterName; how Terraform's data sources look a
-- resource up) read every resource of the project and kept the few with that name: 24 ms on
-- PostgreSQL with 25,000 sessions in the project. With seq last, the index also gives the
-- page's order, after the marker. Append-only like every migration.
CREATE INDEX sessions_name ON sessions (project_id, name, seq);
CREATE INDEX filters_name ON filters (project_id, name, seq);
CREATE INDEX ports_name ON ports (project_id, name, seq);
