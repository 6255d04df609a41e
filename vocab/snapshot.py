"""A full Athena vocabulary for the converters: a read-only DuckDB file of vocabulary rows.

A full download (millions of concepts) is not held in memory. vocab.prepare builds this file once
per loaded vocabulary, before any conversion; every converting process (the loader and its
workers) opens it read-only and looks codes up in it, caching what it was asked. Pickled into a
worker it carries only its path: each process opens its own connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ctcl_map.vocab.lookup import VocabHit, VocabIndex

ROWS_TABLE = "vocabulary_row"  # VOCABULARY_ROW_COLUMNS, indexed by concept code and by concept id
PREFETCH_CODES = 500  # codes per prefetch query (DuckDB probes the code index for each)


class SnapshotVocabulary:
    """The Vocabulary of a snapshot file (see vocab.prepare.prepare_vocabulary)."""

    def __init__(self, path: Path):
        self.path = path
        self._connection: Any = None  # opened on first use, in the process that uses it
        self._index = VocabIndex()  # the rows of the codes and concepts asked so far
        self._asked_codes: set[tuple[str, str]] = set()
        self._concepts: dict[int, tuple[str, str | None, str] | None] = {}  # concepts asked by id

    def __getstate__(self) -> dict[str, Path]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Path]) -> None:
        type(self).__init__(self, state["path"])

    def _query(self, sql: str, params: list) -> list[tuple]:
        if self._connection is None:
            import duckdb

            self._connection = duckdb.connect(str(self.path), read_only=True)
        return self._connection.execute(sql, params).fetchall()

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Look up the (vocabulary_id, code) pairs not asked yet in one query per PREFETCH_CODES
        codes: an indexed IN-list costs about a tenth of a query per code (1.4 ms each)."""
        new = {pair for pair in pairs if pair not in self._asked_codes}
        codes = sorted({code for _, code in new})
        for start in range(0, len(codes), PREFETCH_CODES):
            chunk = codes[start:start + PREFETCH_CODES]
            rows = self._query(f"SELECT * FROM {ROWS_TABLE} WHERE concept_code IN ({', '.join('?' * len(chunk))}) "
                               "ORDER BY concept_id, target_concept_id", chunk)
            self._index.add(row for row in rows if (row[0], row[1]) in new)
        self._asked_codes |= new

    def lookup(self, vocabulary_id: str, code: str) -> VocabHit | None:
        key = (vocabulary_id, code)
        if key not in self._asked_codes:
            # By the code alone: DuckDB probes an index for one equality and scans the whole
            # table (20 ms at 6 M rows) for two. A code's rows in other vocabularies are few.
            rows = self._query(f"SELECT * FROM {ROWS_TABLE} WHERE concept_code = ? ORDER BY concept_id, target_concept_id", [code])
            self._index.add(row for row in rows if row[0] == vocabulary_id)
            self._asked_codes.add(key)
        return self._index.lookup(vocabulary_id, code)

    def concept(self, concept_id: int) -> tuple[str, str | None, str] | None:
        """(domain_id, standard_concept, vocabulary_id) of a concept id."""
        found = self._index.concept(concept_id)  # a concept of a code looked up already
        if found is None and concept_id not in self._concepts:
            rows = self._query(f"SELECT domain_id, standard_concept, vocabulary_id FROM {ROWS_TABLE} WHERE concept_id = ? LIMIT 1",
                               [concept_id])
            self._concepts[concept_id] = (rows[0][0], rows[0][1] or None, rows[0][2]) if rows else None
        return found or self._concepts.get(concept_id)
