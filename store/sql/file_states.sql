-- ctcl_file_state: content hash, size and modification time of each input file a completed
-- run loaded (incremental runs skip unchanged files unread).

-- name: of_files
-- the files as a relation f(source_file)
SELECT s.source_file, s.content_hash, s.size_bytes, s.modified_ns, s.medications
FROM {ctcl_file_state} s JOIN {files} f ON f.source_file = s.source_file

-- name: forget
-- the files as a one-column relation k(k)
DELETE FROM {ctcl_file_state} WHERE source_file IN (SELECT k FROM {files})
