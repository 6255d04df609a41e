-- ctcl_reference_wait: records waiting for a resource they need (a drug for its Medication, a
-- result for the DiagnosticReport that dates it); ctcl_result_context: what each report says of
-- the results it lists.

-- name: drugs_waiting_for
-- the awaited Medications as a one-column relation k(k)
SELECT w.resource_key, w.awaited_key, w.run_id, d.drug_exposure_id, d.person_id
FROM {ctcl_reference_wait} w
JOIN {medications} k ON k.k = w.awaited_key
JOIN {ctcl_lineage} l ON l.resource_key = w.resource_key AND l.omop_table = 'drug_exposure'
JOIN {drug_exposure} d ON d.drug_exposure_id = l.omop_id

-- name: any_waiting_resource
SELECT 1 FROM {ctcl_reference_wait} WHERE resource IS NOT NULL LIMIT 1

-- name: results_waiting_for_reports
-- parameters: the awaited-key prefix of a report, then that prefix followed by '%'
SELECT w.resource_key, w.run_id, w.source_file, w.source_position, w.resource, s.content_hash, c.report_key, c.context
FROM {ctcl_reference_wait} w
JOIN {ctcl_resource_state} s ON s.resource_key = w.resource_key
LEFT JOIN {ctcl_result_context} c ON CAST(? AS VARCHAR) || c.result_key = w.awaited_key
WHERE w.resource IS NOT NULL AND w.awaited_key LIKE ? AND (s.status = 'quarantined' OR c.context IS NOT NULL)
ORDER BY w.resource_key, c.report_key

-- name: any_wait
SELECT 1 FROM {ctcl_reference_wait} LIMIT 1
