-- ctcl_quarantine: records not loaded, with why.

-- name: already_quarantined_by_other_runs
-- the entries as a relation k(source_file, source_position, reason); parameter: this run
SELECT q.source_file, q.source_position, q.reason FROM {ctcl_quarantine} q
JOIN {entries} k ON k.source_file = q.source_file AND k.source_position = q.source_position AND k.reason = q.reason
WHERE q.run_id <> ?

-- name: undated_at
-- the records as a relation k(source_file, source_position)
SELECT q.run_id, q.source_file, q.source_position, q.reason FROM {ctcl_quarantine} q
JOIN {entries} k ON k.source_file = q.source_file AND k.source_position = q.source_position
WHERE q.reason IN ('missing_date', 'missing_subject')

-- name: why_persons_are_missing
-- the persons as a relation c(person_id): the state of the Patient each stands for, and the
-- reason it was quarantined for if it was
SELECT c.person_id, s.status,
  (SELECT MIN(q.reason) FROM {ctcl_quarantine} q WHERE q.resource_type = 'Patient' AND 'Patient/' || q.resource_id = m.row_key)
FROM {persons} c
LEFT JOIN {ctcl_id_map} m ON m.id_space = 'person' AND m.omop_id = c.person_id
LEFT JOIN {ctcl_resource_state} s ON s.resource_key = m.row_key
