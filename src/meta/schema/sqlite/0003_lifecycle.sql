-- 0003: lifecycle previews (one per repository) and the history of what lifecycle did.
CREATE TABLE lifecycle_previews (
	repo_id INTEGER PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,
	policy TEXT NOT NULL,
	status TEXT NOT NULL,
	results TEXT NOT NULL,       -- JSON array of preview results (see core/lifecycle_run.c)
	created_at INTEGER NOT NULL
);

-- Kept after the repository is gone: it is the audit trail of expirations.
CREATE TABLE lifecycle_history (
	id INTEGER PRIMARY KEY,
	at INTEGER NOT NULL,
	account TEXT NOT NULL,
	region TEXT NOT NULL,
	repo_name TEXT NOT NULL,
	digest TEXT NOT NULL,
	tags TEXT,                   -- JSON array
	rule_priority INTEGER NOT NULL,
	action TEXT NOT NULL,        -- EXPIRE | TRANSITION
	pushed_at INTEGER NOT NULL
);
CREATE INDEX lifecycle_history_by_repo ON lifecycle_history (account, region, repo_name, id);

-- Garbage collection scans blobs by age.
CREATE INDEX blobs_by_age ON blobs (created_at);
