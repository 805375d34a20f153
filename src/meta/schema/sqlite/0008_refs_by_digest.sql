-- 0008: one index serves every lookup of references by digest. image_refs_by_blob (digest)
-- and image_refs_by_digest (repo_id, digest, kind) were both written by every image put, at
-- the few hot spots of shared layers; (digest, kind, repo_id) answers the per-repository
-- lookups with the same equalities and the registry-wide ones (garbage collection, mounts)
-- by its prefix. Per-repository listings go through the images of the repository instead.
DROP INDEX image_refs_by_blob;
DROP INDEX image_refs_by_digest;
CREATE INDEX image_refs_by_digest ON image_refs (digest, kind, repo_id);
