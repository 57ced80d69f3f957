-- Asynchronous states (Alibaba face): the revision each session, filter and rule was created
-- at, so that a pending change reads `Creating` rather than `Modifying`. Set once, on insert.

ALTER TABLE sessions ADD COLUMN created_revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE filters ADD COLUMN created_revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rules ADD COLUMN created_revision INTEGER NOT NULL DEFAULT 0;

UPDATE sessions SET created_revision = revision;
UPDATE filters SET created_revision = revision;
UPDATE rules SET created_revision = revision;

CREATE TRIGGER sessions_created_revision AFTER INSERT ON sessions BEGIN
    UPDATE sessions SET created_revision = NEW.revision WHERE id = NEW.id;
END;
CREATE TRIGGER filters_created_revision AFTER INSERT ON filters BEGIN
    UPDATE filters SET created_revision = NEW.revision WHERE id = NEW.id;
END;
CREATE TRIGGER rules_created_revision AFTER INSERT ON rules BEGIN
    UPDATE rules SET created_revision = NEW.revision WHERE id = NEW.id;
END;

-- A session deleted while a connected agent hosting it had not applied the deletion: what the
-- Alibaba face lists, as `Deleting`, until those agents applied `revision` (display only: the
-- session itself is gone). `view` is the JSON the face showed; `hosts` a JSON array.
CREATE TABLE aliyun_tombstones (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    project_id  TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    view        TEXT NOT NULL,
    hosts       TEXT NOT NULL
);
CREATE INDEX aliyun_tombstones_project ON aliyun_tombstones (project_id, kind);
