"""Write converted batches into the CDM: stable integer ids, idempotent replacement, one transaction.

Converters name rows and references by keys ("Patient/123", "Observation/9#component1"). Here
those keys become integer ids through ctcl_id_map, so loading the same input twice gives the same
ids, and a newer version of a resource replaces exactly the rows the older one produced (found
through ctcl_lineage). Each batch commits atomically: a run killed mid-way leaves the database as
it was before that batch, and the next run redoes it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ctcl_map.cdm.schema import cdm_fields, primary_key
from ctcl_map.converters.context import outside_its_bundle
from ctcl_map.converters.observation import report_contexts
from ctcl_map.model import DELETED, BatchOutcome, Conversion, ConvertedItem, InputProblem, NotConverted, OmopRow, SourceItem
from ctcl_map.store.database import Database
from ctcl_map.store.id_map import IdRegistry
from ctcl_map.store.lineage import record_lineage, record_new_resource_states, record_resource_states
from ctcl_map.store.quarantine import quarantine_records
from ctcl_map.store.runs import record_run_persons
from ctcl_map.store.visit_links import clear_missing_visits
from ctcl_map.store.waits import any_wait, record_result_contexts, wait

# Columns whose values are keys of other rows, and the id space they live in.
REFERENCE_SPACES = {
    "person_id": "person",
    "visit_occurrence_id": "visit_occurrence",
    "preceding_visit_occurrence_id": "visit_occurrence",
}
# measurement_event_id / observation_event_id point at the table their field concept names
# (verified field concepts, vocab-concepts.md section 6).
EVENT_FIELD_SPACES = {1147127: "condition_occurrence", 1147094: "drug_exposure", 1147082: "procedure_occurrence"}
EVENT_COLUMNS = {"measurement_event_id": "meas_event_field_concept_id", "observation_event_id": "obs_event_field_concept_id"}




@dataclass(slots=True)
class _Recorded:
    """What the database holds of a batch's resources when the batch starts."""

    state: dict[str, tuple]  # resource key -> (content hash, versionId, lastUpdated) of its recorded state
    applied: dict[tuple[str, str], str]  # (resource key, file) -> hash of the entry last applied from that file
    occurrences: set[tuple[str, str]]  # (resource key, file) pairs with a ctcl_resource_file row
    seen_this_run: set[str]  # resource keys an earlier batch of this run read (in any file)
    owners: set[str]  # resource keys with CDM rows (lineage), waits or report contexts to remove when replaced


class CdmWriter:
    def __init__(self, db: Database, run_id: int, concurrent_runs: Iterable[int] = ()):
        self.db = db
        self.run_id = run_id
        # Runs that were loading (held by a live process) when this one started: see vanished_resources.
        self.concurrent_runs = frozenset(concurrent_runs)
        self.ids = IdRegistry(db)
        # table -> persons whose rows the batch changes (None: a row naming no person)
        self._batch_persons: defaultdict[str, set[int | None]] = defaultdict(set)
        self._recorded_persons: set[int] = set()  # already in ctcl_run_person for this run
        # Visit ids this writer's rows reference or whose visit rows it deleted: if all of them
        # exist at the end of the run, no visit link can dangle (see clear_missing_visits).
        self.visit_ids: set[int] = set()
        # Unmapped codes of resources written this run whose person was not in the CDM when their
        # batch committed: if the end-of-run check removes them, their codes leave the report too.
        self.awaiting_person: dict[str, Counter] = {}
        # Whether ctcl_reference_wait may hold rows: when it cannot, replacing resources skips it
        # (on PostgreSQL another loader may add rows at any time: always checked there).
        self._waits = db.concurrent_writers or any_wait(db)
        # With foreign keys on (`ctcl-map constraints`), a batch must commit consistent: links to
        # visits absent at its commit are cleared in the batch, not at the end of the run.
        self._foreign_keys = db.has_foreign_keys()
        self._deleted_persons: set[int] = set()  # person rows the current batch deleted
        self._no_entries_before: bool | None = None  # ctcl_resource_file was empty when applied_hashes first looked
        self._columns = {table: tuple(f.name for f in fields) for table, fields in cdm_fields().items()}
        self._lengths = {
            table: tuple((f.name, f.max_length) for f in fields if f.max_length) for table, fields in cdm_fields().items()
        }
        # Per table, only the key columns it actually has: _materialise runs once per row.
        self._references = {
            table: tuple((column, space) for column, space in REFERENCE_SPACES.items() if column in cols and column != primary_key(table))
            for table, cols in self._columns.items()
        }
        self._event_columns = {
            table: tuple((column, field) for column, field in EVENT_COLUMNS.items() if column in cols)
            for table, cols in self._columns.items()
        }

    # ------------------------------------------------------------------------------------------
    def write_batch(self, converted: list[ConvertedItem], problems: Iterable[InputProblem], outcome: BatchOutcome) -> None:
        """Everything in `converted` and `problems` commits together, or nothing does.

        The persons the batch touches are recorded in ctcl_run_person in the same transaction, so
        if the run is killed later the next run still re-derives their eras and periods.
        """
        problems = list(problems)
        counters = (outcome.duplicates, outcome.superseded, outcome.skipped_unchanged)
        try:
            self._in_batch(lambda: self._write(converted, problems, outcome), outcome)
        except NotConverted:
            outcome.duplicates, outcome.superseded, outcome.skipped_unchanged = counters  # counted again when rewritten
            raise

    def applied_hashes(self, file: str) -> dict[str, str]:
        """Resource key -> content hash of the entry last applied from this file: a resource read
        there with that hash again needs no conversion (write_batch skips it)."""
        if self._no_entries_before is None:
            self._no_entries_before = not self.db.query(f"SELECT 1 FROM {self.db.table('ctcl_resource_file')} LIMIT 1")
        if self._no_entries_before:
            # A run reads each file once, so only an earlier run (none: the table was empty when
            # this one first asked) could have applied entries from it; a concurrent loader's
            # entries may be missed, which costs their conversion only. Saves a query per file.
            return {}
        return dict(self.db.query(f"SELECT resource_key, content_hash FROM {self.db.table('ctcl_resource_file')} "
                                  "WHERE source_file = ? AND content_hash IS NOT NULL", [file]))

    def rewrite_batch(self, converted: list[ConvertedItem], outcome: BatchOutcome) -> None:
        """Write these conversions over what their resources have now, whatever their recorded
        state: waiting records converted again with what they waited for (their content did not
        change, so write_batch would skip them as unchanged)."""
        self._in_batch(lambda: self.record_quarantine(self._replace(converted, outcome)), outcome)

    def _in_batch(self, write: Callable[[], None], outcome: BatchOutcome) -> None:
        self._batch_persons = defaultdict(set)
        self._deleted_persons = set()
        self.ids.start_batch()
        try:
            with self.db.exclusive():
                write()
                self.ids.flush()
                new_persons = {person for persons in self._batch_persons.values() for person in persons
                               if person is not None} - self._recorded_persons
                record_run_persons(self.db, self.run_id, new_persons)
                if self._foreign_keys:
                    self._remove_rows_of_deleted_persons()
                    clear_missing_visits(self.db, [self.run_id], set(self.visit_ids))
        except BaseException:
            self.ids.forget_pending()
            raise
        self._recorded_persons |= new_persons
        outcome.person_ids |= new_persons
        for table, persons in self._batch_persons.items():
            outcome.persons_by_table[table] |= persons - {None}

    def _write(self, converted: list[ConvertedItem], problems: list[InputProblem], outcome: BatchOutcome) -> None:
        # Within one batch the last occurrence of a resource wins (a later entry is a later
        # version); an older version after a newer one is counted and dropped, repeats are counted.
        counted: dict[str, ConvertedItem] = {}
        kept: list[ConvertedItem] = []
        for entry in converted:
            previous = counted.get(entry.item.key)
            if previous is not None and entry.item.method != "DELETE" and previous.item.method != "DELETE":
                if _is_older(entry.item, previous.item):
                    outcome.superseded += 1  # an older version after a newer one: counted, not loaded
                    continue
                outcome.duplicates += 1
            counted[entry.item.key] = entry
            kept.append(entry)
        recorded = self._recorded(converted)
        state, applied = recorded.state, recorded.applied
        # Read in an earlier batch of this run: a repeat, whatever its version.
        outcome.duplicates += sum(1 for k, e in counted.items() if e.item.method != "DELETE" and k in recorded.seen_this_run)
        # An entry applied from its file as it is now is not applied again: reading an unchanged
        # file again (--full) changes nothing, even if a later entry elsewhere (a DELETE, another
        # file's version) changed the resource since. So --full and incremental runs agree.
        latest: dict[str, ConvertedItem] = {}
        for entry in kept:
            if applied.get((entry.item.key, entry.item.file)) != entry.content_hash:
                latest[entry.item.key] = entry
        outcome.skipped_unchanged += len(counted.keys() - latest.keys())
        to_replace: list[ConvertedItem] = []
        for key, entry in latest.items():
            known = state.get(key)
            if known is not None:
                known_hash, known_version, known_updated = known
                if known_hash == entry.content_hash:
                    outcome.skipped_unchanged += 1
                    continue
                if _is_older_than_state(entry.item, known_version, known_updated):
                    outcome.superseded += 1
                    continue
            to_replace.append(entry)
        unconverted = [entry for entry in to_replace if not entry.converted]
        if unconverted:
            raise NotConverted(unconverted)
        quarantine = self._replace(to_replace, outcome, recorded)
        self._record_occurrences(converted, recorded.occurrences)
        for problem in problems:
            outcome.quarantined[problem.reason] += 1
            quarantine.append((self.run_id, problem.file, problem.position, problem.resource_type, problem.resource_id, problem.reason, problem.message))
        self.record_quarantine(quarantine)

    def _replace(self, to_replace: list[ConvertedItem], outcome: BatchOutcome, recorded: _Recorded | None = None) -> list[tuple]:
        """Replace what these resources wrote with their conversions; the quarantine rows to record.
        `recorded`: what the database held of them when the batch started, if known (else any of
        them may own rows and have a state)."""
        db = self.db
        replaced_keys = [entry.item.key for entry in to_replace]
        self._delete_owned_rows(replaced_keys if recorded is None else [key for key in replaced_keys if key in recorded.owners], outcome)
        self.ids.prepare(self._keys_of(to_replace))

        rows_by_table: dict[str, list[tuple]] = defaultdict(list)
        lineage: list[tuple] = []
        states: list[tuple] = []
        quarantine: list[tuple] = []
        waiting: list[tuple] = []  # ctcl_reference_wait rows: records needing a resource not read yet
        contexts: list[tuple] = []  # ctcl_result_context rows of the DiagnosticReports written
        persons_of: dict[str, set[int]] = defaultdict(set)  # resource key -> persons its rows name
        for entry in to_replace:
            item, conversion = entry.item, entry.conversion
            meta = _meta(item)
            status = "loaded"
            if item.method == "DELETE":
                status = "deleted"
                outcome.deleted += 1
            elif conversion is None:
                status = "not_mapped"  # counted where it was read (parallel.convert_item)
            elif conversion.quarantined:
                status = "quarantined"
                reason, message = conversion.quarantined
                outcome.quarantined[reason] += 1
                quarantine.append((self.run_id, item.file, item.position, item.resource_type, item.resource_id, reason, message))
                if conversion.awaits is not None:  # kept whole: converted again when what it awaits is known
                    waiting.append((item.key, conversion.awaits, self.run_id, item.file, item.position,
                                    orjson.dumps(outside_its_bundle(item)).decode()))
            elif conversion.excluded:
                status = "excluded"
                outcome.excluded[conversion.excluded] += 1
            else:
                outcome.resources_loaded[item.resource_type] += 1
                if conversion.awaits is not None:  # its rows are filled in place when what it awaits is known
                    waiting.append((item.key, conversion.awaits, self.run_id, item.file, item.position, None))
                for note in conversion.notes:
                    outcome.notes[note] += 1
                for gap in conversion.unmapped:
                    outcome.unmapped[(gap.table, gap.column, gap.vocabulary, gap.code, gap.reason)] += 1
                for row in conversion.rows:
                    values, omop_id = self._materialise(row, outcome)
                    if row.values.get("person_id") is not None and row.table != "person":
                        persons_of[item.key].add(row.values["person_id"])
                    rows_by_table[row.table].append(values)
                    outcome.rows_by_source[(item.resource_type, row.table)] += 1
                    lineage.append((row.table, omop_id, item.key, item.file, item.position, self.run_id))
            if item.resource_type == "DiagnosticReport" and item.method != "DELETE":
                contexts += [(result, item.key, orjson.dumps(context).decode()) for result, context in report_contexts(item)]
            states.append((item.key, entry.content_hash, _str(meta.get("versionId"), 64), _str(meta.get("lastUpdated"), 40),
                           status, item.file, self.run_id))

        for table, rows in rows_by_table.items():
            db.insert_rows(table, self._columns[table], rows)
            outcome.rows_by_table[table] += len(rows)
        record_lineage(db, lineage)
        if waiting:
            wait(db, waiting)
            self._waits = True
        record_result_contexts(db, contexts)
        self._note_awaiting_person(persons_of, {entry.item.key: entry.conversion for entry in to_replace
                                                if entry.conversion is not None})
        if recorded is None:
            record_resource_states(db, states)
        else:  # only a resource with a state row has one to replace
            record_resource_states(db, [row for row in states if row[0] in recorded.state])
            record_new_resource_states(db, [row for row in states if row[0] not in recorded.state])
        return quarantine

    def _note_awaiting_person(self, persons_of: dict[str, set[int]], conversions: dict[str, Conversion]) -> None:
        """Remember the unmapped codes of resources whose person is not (yet) in the CDM."""
        wanted = sorted(set().union(*persons_of.values())) if persons_of else []
        if not wanted:
            return
        with self.db.temp_relation("ctcl_person_ids", ("person_id",), [(p,) for p in wanted]) as relation:
            absent = {p for (p,) in self.db.query(
                f"SELECT c.person_id FROM {relation} c WHERE NOT EXISTS "
                f"(SELECT 1 FROM {self.db.table('person')} p WHERE p.person_id = c.person_id)")}
        for key, persons in persons_of.items():
            if persons & absent:
                gaps = conversions[key].unmapped
                self.awaiting_person[key] = Counter((g.table, g.column, g.vocabulary, g.code, g.reason) for g in gaps)

    def _record_occurrences(self, converted: list[ConvertedItem], recorded: Collection[tuple[str, str]]) -> None:
        """Each resource this batch read, in the file it stands in, as seen by this run (unchanged
        ones too: what counts is that the file still holds them), with the hash of its last entry
        there (a DELETE entry is recorded too, as 'deleted': it holds nothing, but was applied).
        `recorded`: the (resource key, file) pairs that have a row already (replaced; the others
        are inserted)."""
        last = {(entry.item.file, entry.item.key): entry.content_hash for entry in converted}
        rows = [(f, k, self.run_id, h) for (f, k), h in sorted(last.items())]
        columns = ("source_file", "resource_key", "seen_run", "content_hash")
        self.db.upsert_rows("ctcl_resource_file", columns, [row for row in rows if (row[1], row[0] or "") in recorded],
                            key=("source_file", "resource_key"))
        self.db.insert_rows("ctcl_resource_file", columns, [row for row in rows if (row[1], row[0] or "") not in recorded])

    def vanished_resources(self, files: list[str]) -> list[tuple[str, str]]:
        """(resource key, file) of resources no longer in any file that held them, judged by
        `files`: files this run read completely and cleanly. Their stale occurrences are removed.

        An occurrence is stale when neither this run nor any run that may have read the file
        after this run started saw it there: its seen_run is an earlier run that was not loading
        any more when this one started. A later run (higher id) or one loading concurrently
        re-stamps what it reads in the same file, whatever the order the batches commit in; taking
        its stamp for absence was how two loaders of the same files deleted each other's rows.
        """
        if not files:
            return []
        db = self.db
        table = db.table("ctcl_resource_file")
        concurrent = "".join(f" AND o.seen_run <> {int(run)}" for run in sorted(self.concurrent_runs))
        with db.key_relation(files) as relation:
            stale = db.query(f"SELECT o.resource_key, o.source_file, o.content_hash FROM {table} o JOIN {relation} f ON f.k = o.source_file "
                             f"WHERE o.seen_run < ?{concurrent}", [self.run_id])
        if not stale:
            return []
        db.delete_keys("ctcl_resource_file", ("source_file", "resource_key"), sorted({(f, k) for k, f, _ in stale}))
        # A DELETE entry gone from its file deletes nothing (the resource may be loaded again since).
        keys = sorted({key for key, _, applied in stale if applied != DELETED})
        if not keys:
            return []
        still_held = {key for (key,) in self._with_keys(
            keys, f"SELECT DISTINCT o.resource_key FROM {table} o JOIN {{keys}} k ON k.k = o.resource_key "
                  f"WHERE o.content_hash IS NULL OR o.content_hash <> '{DELETED}'", fetch=True)}
        return sorted(dict((key, file) for key, file, applied in sorted(stale, key=repr)
                           if applied != DELETED and key not in still_held).items())

    def record_quarantine(self, rows: list[tuple]) -> None:
        """rows: (run_id, file, position, resource type, resource id, reason, message); see store.quarantine.quarantine_records."""
        quarantine_records(self.db, rows)

    # ------------------------------------------------------------------------------------------
    def _key_columns(self, row: OmopRow) -> Iterator[tuple[str, str | None, str]]:
        """(column, id space, key) of every key in a row: its own primary key, its references
        (person, visit) and event links. The space is None for an event link whose field concept
        names no table we key. One walk, used both to prefetch ids and to fill them in."""
        table, values = row.table, row.values
        pk = primary_key(table)
        if pk is not None:
            yield pk, table, row.key
        for column, space in self._references[table]:
            ref = values.get(column)
            if ref.__class__ is str:
                yield column, space, ref
        for column, field_column in self._event_columns[table]:
            ref = values.get(column)
            if ref.__class__ is str:
                field_concept = values.get(field_column)
                yield column, None if field_concept is None else EVENT_FIELD_SPACES.get(field_concept), ref

    def _materialise(self, row: OmopRow, outcome: BatchOutcome) -> tuple[tuple, int]:
        """Keys -> integer ids, missing columns -> NULL, text cut to its declared length."""
        values = row.values
        table = row.table
        ids = self.ids
        for column, space, key in self._key_columns(row):
            values[column] = ids.get(space, key) if space else None
        person_id = values.get("person_id")
        visit_id = values.get("visit_occurrence_id")
        if visit_id is not None:
            self.visit_ids.add(visit_id)
        pk = primary_key(table)
        own = values[pk] if pk is not None else person_id
        assert own is not None  # the one table without a primary key we write (death) names its person
        self._batch_persons[table].add(person_id)
        for column, limit in self._lengths[table]:
            text = values.get(column)
            if text is not None and len(text) > limit:
                values[column] = text[:limit]
                outcome.truncated_values += 1
        return tuple(map(values.get, self._columns[table])), own

    def _keys_of(self, entries: list[ConvertedItem]) -> Iterator[tuple[str, str]]:
        """(id space, row key) of every key _materialise will turn into an id for these entries."""
        for entry in entries:
            conversion = entry.conversion
            if conversion is None or conversion.quarantined or conversion.excluded or entry.item.method == "DELETE":
                continue
            for row in conversion.rows:
                for _, space, key in self._key_columns(row):
                    if space:
                        yield space, key

    def _recorded(self, converted: list[ConvertedItem]) -> _Recorded:
        """What the database holds of the resources of these entries (one query)."""
        if not converted:
            return _Recorded({}, {}, set(), set(), set())
        db = self.db
        t = db.table
        pairs = sorted({(entry.item.key, entry.item.file or "") for entry in converted})
        # Owning rows is judged on every table _delete_owned_rows empties, not on the state row
        # (written and removed with them): a state removed by hand must not leave rows behind.
        owns = [f"EXISTS (SELECT 1 FROM {t('ctcl_lineage')} l WHERE l.resource_key = b.k)",
                f"EXISTS (SELECT 1 FROM {t('ctcl_result_context')} c WHERE c.report_key = b.k)"]
        if self._waits:
            owns.append(f"EXISTS (SELECT 1 FROM {t('ctcl_reference_wait')} w WHERE w.resource_key = b.k)")
        with db.temp_relation("ctcl_batch_keys", ("k", "f"), pairs) as relation:
            rows = db.query(
                f"SELECT b.k, b.f, s.content_hash, s.version_id, s.last_updated, o.content_hash, o.resource_key IS NOT NULL, "
                f"EXISTS (SELECT 1 FROM {t('ctcl_resource_file')} r WHERE r.resource_key = b.k AND r.seen_run = {int(self.run_id)}), "
                f"{' OR '.join(owns)} FROM {relation} b "
                f"LEFT JOIN {t('ctcl_resource_state')} s ON s.resource_key = b.k "
                f"LEFT JOIN {t('ctcl_resource_file')} o ON o.resource_key = b.k AND o.source_file = b.f"
            )
        return _Recorded(
            state={key: (digest, version, updated) for key, _, digest, version, updated, *_ in rows if digest is not None},
            applied={(key, file): occurrence for key, file, _, _, _, occurrence, *_ in rows if occurrence is not None},
            occurrences={(key, file) for key, file, _, _, _, _, present, _, _ in rows if present},
            seen_this_run={key for key, *_, seen, _ in rows if seen},
            owners={key for key, *_, owns_rows in rows if owns_rows},
        )

    def _delete_owned_rows(self, resource_keys: list[str], outcome: BatchOutcome) -> None:
        if not resource_keys:
            return
        db = self.db
        owned = self._with_keys(
            resource_keys,
            f"SELECT l.omop_table, l.omop_id FROM {db.table('ctcl_lineage')} l JOIN {{keys}} k ON k.k = l.resource_key",
            fetch=True,
        )
        by_table: dict[str, list[int]] = defaultdict(list)
        for table, omop_id in owned:
            by_table[table].append(omop_id)
        self.visit_ids.update(by_table.get("visit_occurrence", ()))
        self._deleted_persons.update(by_table.get("person", ()))
        for table, ids in by_table.items():
            id_column = primary_key(table) or "person_id"
            for start in range(0, len(ids), 1000):
                chunk = ids[start : start + 1000]
                placeholders = ",".join("?" * len(chunk))
                persons = db.query(f"DELETE FROM {db.table(table)} WHERE {id_column} IN ({placeholders}) RETURNING person_id", chunk)
                self._batch_persons[table].update(p for (p,) in persons)
        for table in ("ctcl_lineage", "ctcl_reference_wait") if self._waits else ("ctcl_lineage",):
            self._with_keys(resource_keys, f"DELETE FROM {db.table(table)} WHERE resource_key IN (SELECT k FROM {{keys}})")
        reports = [key for key in resource_keys if key.startswith("DiagnosticReport/")]
        if reports:
            self._with_keys(reports, f"DELETE FROM {db.table('ctcl_result_context')} WHERE report_key IN (SELECT k FROM {{keys}})")

    def rows_written_by(self, resource_keys: list[str]) -> list[tuple[str, str, int]]:
        """(table, resource key, rows) this run wrote for these resources."""
        return self._with_keys(
            resource_keys,
            f"SELECT l.omop_table, l.resource_key, COUNT(*) FROM {self.db.table('ctcl_lineage')} l JOIN {{keys}} k "
            f"ON k.k = l.resource_key WHERE l.run_id = {int(self.run_id)} GROUP BY l.omop_table, l.resource_key",
            fetch=True,
        )

    def _remove_rows_of_deleted_persons(self) -> None:
        """Foreign keys on: rows of persons this batch deleted go in the same transaction (other
        resources' rows, derived eras and periods), as the run-level steps would remove them later;
        the run-level steps still record what they remove (dangling subjects) and rebuild the rest."""
        persons = sorted(self._deleted_persons)
        if not persons:
            return
        db = self.db
        with db.temp_relation("ctcl_deleted_persons", ("person_id",), [(p,) for p in persons]) as relation:
            for table, fields in cdm_fields().items():
                if table != "person" and any(f.name == "person_id" and f.fk_table == "person" for f in fields):
                    db.execute(f"DELETE FROM {db.table(table)} WHERE person_id IN (SELECT person_id FROM {relation})")
        db.execute(f"DELETE FROM {db.table('episode_event')} WHERE episode_id NOT IN "
                   f"(SELECT episode_id FROM {db.table('episode')})")
        db.execute(f"DELETE FROM {db.table('note_nlp')} WHERE note_id NOT IN (SELECT note_id FROM {db.table('note')})")

    def forget_resources(self, resource_keys: list[str]) -> None:
        """Remove the rows, the recorded state and the file occurrences of these resources, as if never loaded."""
        self._delete_owned_rows(resource_keys, BatchOutcome())
        for table in ("ctcl_resource_state", "ctcl_resource_file"):
            self._with_keys(resource_keys, f"DELETE FROM {self.db.table(table)} WHERE resource_key IN (SELECT k FROM {{keys}})")

    def _with_keys(self, keys: list[str], sql: str, fetch: bool = False) -> Any:
        """Run `sql` with {keys} standing for a one-column relation (column k) holding `keys`."""
        with self.db.key_relation(keys) as relation:
            statement = sql.replace("{keys}", relation)
            return self.db.query(statement) if fetch else self.db.execute(statement)


def _str(value: Any, limit: int) -> str | None:
    """A text value cut to its bookkeeping column (PostgreSQL refuses longer ones, DuckDB keeps them)."""
    return value[:limit] if isinstance(value, str) else None


def _meta(item: SourceItem) -> dict:
    meta = (item.resource or {}).get("meta")
    return meta if isinstance(meta, dict) else {}


def _version_tuple(meta: dict) -> tuple:
    version = meta.get("versionId")
    numeric = int(version) if isinstance(version, str) and version.isascii() and version.isdigit() and len(version) <= 18 else None
    return numeric, meta.get("lastUpdated") if isinstance(meta.get("lastUpdated"), str) else None


def _is_older(candidate: SourceItem, other: SourceItem) -> bool:
    """True when `candidate` is an older version than `other` by versionId, then lastUpdated."""
    mine = _version_tuple(_meta(candidate))
    theirs = _version_tuple(_meta(other))
    return _compare(mine, theirs) < 0


def _is_older_than_state(candidate: SourceItem, version: str | None, updated: str | None) -> bool:
    mine = _version_tuple(_meta(candidate))
    theirs = (int(version) if version and version.isascii() and version.isdigit() and len(version) <= 18 else None, updated)
    return _compare(mine, theirs) < 0


def _compare(mine: tuple, theirs: tuple) -> int:
    """Compare (versionId, lastUpdated); what is missing on either side does not decide."""
    for a, b in zip(mine, theirs):
        if a is not None and b is not None and a != b:
            return -1 if a < b else 1
    return 0
