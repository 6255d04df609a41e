"""The pseudonym key lives outside the CDM; CDMs of earlier versions keep their person_source_value."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import pytest

from ctcl_map.errors import RunFailed
from ctcl_map.pipeline import RunOptions, run_fhir2omop
from ctcl_map.pseudonym_key import key_check

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

BUNDLE = FIXTURES / "golden" / "patient_person_and_death.json"
LEGACY_KEY = "ab" * 32


def _load(db, key_file=None):
    return run_fhir2omop(db, RunOptions(inputs=[BUNDLE], oncology=False, key_file=key_file))


def _person_source_values(db) -> list[str]:
    return [value for (value,) in db.query(f"SELECT person_source_value FROM {db.table('person')} ORDER BY person_id")]


def _expected(key_hex: str) -> list[str]:
    return ["p-" + hmac.new(bytes.fromhex(key_hex), b"Patient/p1", hashlib.sha256).hexdigest()[:24]]


def _settings(db) -> dict:
    return dict(db.query(f"SELECT name, value FROM {db.table('ctcl_settings')}"))


@pytest.fixture
def no_configured_key(monkeypatch, tmp_path):
    monkeypatch.delenv("CTCL_MAP_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("CTCL_MAP_KEY_FILE", str(tmp_path / "config" / "pseudonym.key"))
    return tmp_path / "config" / "pseudonym.key"


def test_a_cdm_of_an_earlier_version_has_its_key_moved_out_and_keeps_its_pseudonyms(no_configured_key, fresh_db):
    db = fresh_db()
    db.insert_rows("ctcl_settings", ("name", "value"), [("pseudonym_salt", LEGACY_KEY)])  # as earlier versions kept it
    report = _load(db)
    assert _person_source_values(db) == _expected(LEGACY_KEY)
    assert any("moved out of the CDM" in notice for notice in report.notices)
    assert no_configured_key.read_text().strip() == LEGACY_KEY
    assert stat.S_IMODE(no_configured_key.stat().st_mode) == 0o600
    settings = _settings(db)
    assert "pseudonym_salt" not in settings and LEGACY_KEY not in settings.values()
    assert settings["pseudonym_key_check"] == key_check(bytes.fromhex(LEGACY_KEY))
    report = _load(db)  # the next run reads the key file: nothing to say, same pseudonyms
    assert report.notices == [] and _person_source_values(db) == _expected(LEGACY_KEY)


def test_a_new_cdm_gets_a_new_key_file_and_the_cdm_holds_no_secret(no_configured_key, fresh_db):
    db = fresh_db()
    report = _load(db)
    key = no_configured_key.read_text().strip()
    assert len(key) == 64 and any("new pseudonym key" in notice for notice in report.notices)
    assert _person_source_values(db) == _expected(key)
    assert key not in repr(db.query(f"SELECT * FROM {db.table('ctcl_settings')}"))


def test_a_run_with_another_key_is_refused_instead_of_changing_every_pseudonym(no_configured_key, tmp_path, fresh_db):
    db = fresh_db()
    _load(db)
    other = tmp_path / "other.key"
    other.write_text("cd" * 32)
    with pytest.raises(RunFailed, match="not the one this CDM was made with"):
        _load(db, key_file=other)
    no_configured_key.unlink()  # the key is lost: refused, not replaced by a new one
    with pytest.raises(RunFailed, match="not configured here"):
        _load(db)


def test_a_legacy_key_that_differs_from_the_configured_one_is_refused(no_configured_key, tmp_path, fresh_db):
    no_configured_key.parent.mkdir(parents=True)
    no_configured_key.write_text("cd" * 32)
    db = fresh_db()
    db.insert_rows("ctcl_settings", ("name", "value"), [("pseudonym_salt", LEGACY_KEY)])
    with pytest.raises(RunFailed, match="differs from the key"):
        _load(db)
    _load(db, key_file=tmp_path / "this-cdm.key")  # a key file of its own: the CDM's key moves there
    assert (tmp_path / "this-cdm.key").read_text().strip() == LEGACY_KEY
    assert _person_source_values(db) == _expected(LEGACY_KEY)


def test_the_key_may_come_from_the_environment(monkeypatch, no_configured_key, fresh_db):
    monkeypatch.setenv("CTCL_MAP_PSEUDONYM_KEY", "ef" * 20)
    db = fresh_db()
    _load(db)
    assert _person_source_values(db) == _expected("ef" * 20)
    assert not no_configured_key.exists()


@pytest.mark.parametrize("text, message", [("not hex", "not hexadecimal"), ("abcd", "too short")])
def test_an_unusable_key_is_a_configuration_error(tmp_path, no_configured_key, text, message, fresh_db):
    bad = tmp_path / "bad.key"
    bad.write_text(text)
    with pytest.raises(RunFailed, match=message):
        _load(fresh_db(), key_file=bad)
