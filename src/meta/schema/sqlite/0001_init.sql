-- 0001: initial schema. Times are milliseconds since the epoch. Registry = (account, region).
CREATE TABLE repos (
	id INTEGER PRIMARY KEY,              -- creation order
	account TEXT NOT NULL,
	region TEXT NOT NULL,
	name TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	mutability TEXT NOT NULL,            -- MUTABLE | IMMUTABLE | *_WITH_EXCLUSION
	mutability_filters TEXT,             -- JSON array of ImageTagMutabilityExclusionFilter
	scan_on_push INTEGER NOT NULL,
	encryption_type TEXT NOT NULL,
	kms_key TEXT,
	resource_tags TEXT,                  -- JSON array of {Key, Value}, insertion order
	policy TEXT,
	lifecycle_policy TEXT,
	lifecycle_evaluated_at INTEGER NOT NULL DEFAULT 0,
	UNIQUE (account, region, name)
);

-- An image is one stored manifest of one repository (exact bytes).
CREATE TABLE images (
	id INTEGER PRIMARY KEY,              -- push order
	repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
	digest TEXT NOT NULL,
	media_type TEXT NOT NULL,
	artifact_type TEXT,
	subject TEXT,
	manifest BLOB NOT NULL,
	size INTEGER NOT NULL,               -- imageSizeInBytes
	pushed_at INTEGER NOT NULL,
	pulled_at INTEGER,                   -- NULL: never pulled
	status TEXT NOT NULL DEFAULT 'ACTIVE',
	UNIQUE (repo_id, digest)
);

CREATE TABLE tags (
	repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
	seq INTEGER NOT NULL,                -- attachment order
	PRIMARY KEY (repo_id, name)
);
CREATE INDEX tags_by_image ON tags (image_id, seq);

-- What each manifest references: kind 0 = blob (config or layer), 1 = child manifest.
CREATE TABLE image_refs (
	image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
	repo_id INTEGER NOT NULL,
	kind INTEGER NOT NULL,
	digest TEXT NOT NULL,
	media_type TEXT,
	size INTEGER NOT NULL
);
CREATE INDEX image_refs_by_digest ON image_refs (repo_id, digest, kind);
CREATE INDEX image_refs_by_image ON image_refs (image_id);
CREATE INDEX image_refs_by_blob ON image_refs (digest);

-- Blobs present in the blob store (content-addressed, shared by all repositories).
CREATE TABLE blobs (
	digest TEXT PRIMARY KEY,
	size INTEGER NOT NULL,
	created_at INTEGER NOT NULL
);

-- Blobs uploaded to or mounted into a repository (readable there even before a manifest
-- references them).
CREATE TABLE repo_blobs (
	repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
	digest TEXT NOT NULL,
	linked_at INTEGER NOT NULL,
	PRIMARY KEY (repo_id, digest)
);
CREATE INDEX repo_blobs_by_digest ON repo_blobs (digest);

-- Upload sessions shared by the ECR layer API and /v2 uploads. size = bytes received;
-- hash_state = resumable SHA-256 over those bytes.
CREATE TABLE uploads (
	id TEXT PRIMARY KEY,
	repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	size INTEGER NOT NULL DEFAULT 0,
	parts INTEGER NOT NULL DEFAULT 0,
	small_part INTEGER NOT NULL DEFAULT 0,   -- a part < 5 MiB was followed by another part
	last_part_size INTEGER NOT NULL DEFAULT 0,
	hash_state BLOB
);

-- Registry-level documents: registry policy, replication and scanning configuration,
-- account settings. value is JSON text or a plain string.
CREATE TABLE registry_kv (
	account TEXT NOT NULL,
	region TEXT NOT NULL,
	name TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (account, region, name)
);
