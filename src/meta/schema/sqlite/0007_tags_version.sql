-- 0007: repos.tags_version changes whenever the repository's set of tag names changes, in the
-- same transaction, whoever writes (any process, cascades included): a cached tags/list page
-- is valid while the version it was built from is current. Moving a tag to another image
-- leaves the list, and the version, as they are.
ALTER TABLE repos ADD COLUMN tags_version INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER tags_version_insert AFTER INSERT ON tags BEGIN
	UPDATE repos SET tags_version = tags_version + 1 WHERE id = NEW.repo_id;
END;
CREATE TRIGGER tags_version_delete AFTER DELETE ON tags BEGIN
	UPDATE repos SET tags_version = tags_version + 1 WHERE id = OLD.repo_id;
END;
CREATE TRIGGER tags_version_rename AFTER UPDATE OF repo_id, name ON tags BEGIN
	UPDATE repos SET tags_version = tags_version + 1 WHERE id IN (OLD.repo_id, NEW.repo_id);
END;
