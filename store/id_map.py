"""ctcl_id_map: the OMOP id each source key (a resource, a derived row) was given, by id space.

Loading the same input twice gives the same ids because each key's id is kept here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from ctcl_map.store.database import Database
from ctcl_map.store.statements import statement


def visit_starts(db: Database, encounter_keys: Sequence[str]) -> list[tuple]:
    """(Encounter key, visit_start_date, visit_start_datetime) of the loaded Encounters among these."""
    with db.key_relation(encounter_keys) as relation:
        return db.query(statement(db, "id_map", "visit_starts", encounters=relation))


class IdRegistry:
    """Row key -> integer id per id space, persisted in ctcl_id_map.

    Only the keys a batch needs are held: `prepare()` reads them with one join per batch, and
    `start_batch()` forgets the previous batch's, so memory stays bounded whatever the size of the
    CDM. New ids continue after the largest id of their space. On PostgreSQL, where several loaders
    may share a CDM, `prepare()` runs under the load lock and re-reads the largest ids first, so two
    processes never hand out the same id; a single loader gets exactly the ids it would get alone.
    """

    def __init__(self, db: Database):
        self.db = db
        self.ids: dict[str, dict[str, int]] = defaultdict(dict)
        self.next_id: dict[str, int] = defaultdict(lambda: 1)
        self.pending: list[tuple[str, str, int]] = []
        self._read_next_ids(None)

    def _read_next_ids(self, spaces: Iterable[str] | None) -> None:
        if spaces is None:
            rows = self.db.group_maxima("ctcl_id_map", "id_space", "omop_id")
        else:
            # One indexed MAX per space (an aggregate over the whole table would scan it per batch).
            spaces = sorted(spaces)
            if not spaces:
                return
            largest = statement(self.db, "id_map", "largest_id_of_space")
            rows = self.db.query(" UNION ALL ".join(largest for _ in spaces), [value for space in spaces for value in (space, space)])
        for space, max_id in rows:
            if max_id is not None:
                self.next_id[space] = max(self.next_id[space], max_id + 1)

    def start_batch(self) -> None:
        """Forget the keys of the previous batch (they are in ctcl_id_map now)."""
        self.ids.clear()

    def prepare(self, keys: Iterable[tuple[str, str]]) -> None:
        """Read the ids of these (space, row_key) pairs that exist; call inside the batch transaction."""
        wanted = sorted({pair for pair in keys if pair[1] not in self.ids[pair[0]]})
        if self.db.concurrent_writers:  # another loader may have allocated ids since
            self._read_next_ids({space for space, _ in wanted} | {space for space, _, _ in self.pending})
        if not wanted:
            return
        with self.db.temp_relation("ctcl_wanted_ids", ("id_space", "row_key"), wanted) as relation:
            found = self.db.query(statement(self.db, "id_map", "ids_of_keys", wanted=relation))
        for space, row_key, omop_id in found:
            self.ids[space][row_key] = omop_id

    def preload(self, key_prefix: str) -> None:
        """Read every key starting with `key_prefix` (the derived rows' keys, a few per person)."""
        for space, row_key, omop_id in self.db.query(statement(self.db, "id_map", "ids_of_keys_like"), [key_prefix + "%"]):
            self.ids[space][row_key] = omop_id
        if self.db.concurrent_writers:
            self._read_next_ids(None)

    def get(self, space: str, row_key: str) -> int:
        """The id of a key read by prepare()/preload() or allocated in this batch, else a new one."""
        known = self.ids[space].get(row_key)
        if known is not None:
            return known
        new_id = self.next_id[space]
        self.next_id[space] = new_id + 1
        self.ids[space][row_key] = new_id
        self.pending.append((space, row_key, new_id))
        return new_id

    def lookup(self, space: str, row_key: str) -> int | None:
        return self.ids[space].get(row_key)

    def flush(self) -> None:
        if self.pending:
            self.db.insert_rows("ctcl_id_map", ("id_space", "row_key", "omop_id"), self.pending)
            self.pending = []

    def forget_pending(self) -> None:
        """After a failed batch: drop allocations that never reached the database."""
        for space, row_key, omop_id in self.pending:
            self.ids[space].pop(row_key, None)
            self.next_id[space] = min(self.next_id[space], omop_id)  # pending ids are the newest of their space
        self.pending = []
