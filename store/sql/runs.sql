-- ctcl_run: one row per fhir2omop run; ctcl_run_person: the persons a run changed, kept until
-- its run-level steps are done (a killed run's persons are completed by the next run).

-- name: last_run_id
SELECT COALESCE(MAX(run_id), 0) FROM {ctcl_run}

-- name: other_running
SELECT run_id FROM {ctcl_run} WHERE status = 'running' AND run_id <> ? ORDER BY run_id

-- name: persons_of_runs
SELECT DISTINCT person_id FROM {ctcl_run_person} WHERE run_id IN {runs}

-- name: complete
UPDATE {ctcl_run} SET finished_at = ?, status = 'completed', report = ? WHERE run_id = ?

-- name: mark_interrupted
UPDATE {ctcl_run} SET status = 'interrupted' WHERE run_id IN {runs} AND run_id <> ?

-- name: forget_persons
DELETE FROM {ctcl_run_person} WHERE run_id IN {runs}

-- name: files_quarantined_for_missing_persons
-- by a run after run ? (started since) or by one of {runs} (running when it started)
SELECT DISTINCT source_file FROM {ctcl_quarantine}
WHERE reason IN {reasons} AND (run_id > ? OR run_id IN {runs})

-- name: missing_persons_of_runs
SELECT COUNT(*) FROM {ctcl_run_person} WHERE run_id IN {runs} AND person_id NOT IN (SELECT person_id FROM {person})
