-- One-time upgrades of a CDM loaded by an earlier version (see store/prepare.py).

-- name: any_concept
SELECT 1 FROM {concept} LIMIT 1

-- name: any_resource_file
SELECT 1 FROM {ctcl_resource_file} LIMIT 1

-- name: backfill_resource_files
-- Each resource is taken to stand in the file that last loaded it.
INSERT INTO {ctcl_resource_file} (source_file, resource_key, seen_run)
SELECT source_file, resource_key, run_id FROM {ctcl_resource_state}
WHERE source_file IS NOT NULL AND status <> 'deleted'

-- name: reread_files_with_deletions
DELETE FROM {ctcl_file_state} WHERE source_file IN
  (SELECT source_file FROM {ctcl_resource_state} WHERE status = 'deleted' AND source_file IS NOT NULL)
