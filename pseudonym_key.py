"""The site's secret key for person_source_value pseudonyms (HMAC-SHA256 of the Patient key).

It is kept outside the CDM, so a database shared with researchers cannot be reversed by trying
every plausible patient id against its pseudonyms. Where it comes from, first found wins:
`--key-file PATH`, the environment variable CTCL_MAP_PSEUDONYM_KEY (the key itself, hex), the file
named by CTCL_MAP_KEY_FILE, else ~/.config/ctcl-map/pseudonym.key ($XDG_CONFIG_HOME respected).
A missing key file is created with a new random key (mode 0600). The CDM records only a check
value (an HMAC of a fixed text), so a run with another key is refused instead of silently
changing every pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ctcl_map.errors import KeyProblem

ENV_KEY = "CTCL_MAP_PSEUDONYM_KEY"
ENV_KEY_FILE = "CTCL_MAP_KEY_FILE"
MIN_KEY_BYTES = 16


@dataclass
class PseudonymKey:
    key: bytes
    origin: str  # where it came from, for messages (never the key)
    file: Path | None  # the file it is in (None: the environment)


def default_key_file() -> Path:
    named = os.environ.get(ENV_KEY_FILE)
    if named:
        return Path(named).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "ctcl-map" / "pseudonym.key"


def configured_key(key_file: Path | None) -> tuple[PseudonymKey | None, Path]:
    """The configured key, or None when none exists yet; and the file a new key would go to."""
    if key_file is None and os.environ.get(ENV_KEY):
        return PseudonymKey(_parse(os.environ[ENV_KEY], f"${ENV_KEY}"), f"${ENV_KEY}", None), default_key_file()
    path = key_file or default_key_file()
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None, path
    except (OSError, UnicodeDecodeError) as problem:
        raise KeyProblem(f"cannot read the pseudonym key file {path}: {getattr(problem, 'strerror', None) or problem}") from None
    return PseudonymKey(_parse(text, str(path)), str(path), path), path


def write_key_file(path: Path, key: bytes) -> PseudonymKey:
    """Create `path` (readable by its owner only) holding `key`; an existing file is never replaced."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        existing, _ = configured_key(path)
        if existing is None or existing.key != key:
            raise KeyProblem(f"the pseudonym key file {path} appeared meanwhile with another key") from None
        return existing
    except OSError as problem:
        raise KeyProblem(f"cannot create the pseudonym key file {path}: {problem.strerror or problem}; "
                         f"give a writable --key-file, or the key in ${ENV_KEY}") from None
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(key.hex() + "\n")
    return PseudonymKey(key, str(path), path)


def new_key() -> bytes:
    return secrets.token_bytes(32)


def key_check(key: bytes) -> str:
    """A value that tells whether a key is the one a CDM was made with, and nothing else."""
    return hmac.new(key, b"ctcl-map pseudonym key check", hashlib.sha256).hexdigest()[:32]


def _parse(text: str, origin: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise KeyProblem(f"the pseudonym key in {origin} is not hexadecimal") from None
    if len(key) < MIN_KEY_BYTES:
        raise KeyProblem(f"the pseudonym key in {origin} is too short: at least {MIN_KEY_BYTES} bytes ({2 * MIN_KEY_BYTES} hex digits)")
    return key
