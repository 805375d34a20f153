-- 0004: images of one repository in push order (DescribeImages/ListImages pages, lifecycle)
-- without scanning other repositories' rows.
CREATE INDEX images_by_repo ON images (repo_id, id);
