"""Every error ctcl-map reports to its user, in one tree under CtclMapError.

Each class carries the exit code the command line ends with when it reports one (`exit_code`);
str(error) is the message, meant for users: it names the file, line, option or table to fix.
The CLI turns any CtclMapError into `error: MESSAGE` on stderr and that exit code, never a
traceback.

    CtclMapError              1  the job failed
    ├── UsageError            2  the command cannot run as asked (bad option value, missing input path)
    │   ├── OutputPathError   2  an output folder or file cannot be used (a file, a link outside it)
    │   └── SurvivalSpecError 2  a survival request that cannot run
    │       ├── CirceUnavailable  2  --circe without ohdsi-circepy installed
    │       └── CohortIdClash     2  the cohort id holds another definition's rows
    ├── ConfigurationError    2  a file the run is configured with cannot be used
    │   ├── MappingError      2  a mapping CSV is malformed
    │   ├── KeyProblem        2  the pseudonym key cannot be read, made or used
    │   ├── RunFailed         2  fhir2omop cannot start (a MappingError or KeyProblem)
    │   └── ValidationFailed  2  validate cannot start (a MappingError)
    ├── InputError            2  an input is malformed and refused before anything changes
    │   └── AthenaError       2  an Athena download folder or file
    ├── DatabaseError         1  the database could not be opened or a statement failed
    │   ├── DatabaseLocked    1  another process holds the DuckDB file
    │   └── DatabaseUsageError 2 the --db value or a schema name cannot be used as given
    ├── CheckSetupError       1  a data-quality check cannot be expressed (reported as a failed check)
    ├── OutputWriteError      1  a result could not be written after the job ran (disk full, permissions)
    └── JobFailed             1  the job ran and its outcome is a failure (nothing loaded, --strict)

So, for every command: 0 the job completed; 1 the job failed, the database failed or a check
failed; 2 a usage or configuration error, found before anything was changed.
Signals that never reach a user (a converter's InvalidValue, the JSON reader's JsonShapeError and
InputLimitExceeded) are not here: they become quarantine reasons where they are caught.
"""

from __future__ import annotations

USAGE_EXIT_CODE = 2
FAILURE_EXIT_CODE = 1


class CtclMapError(Exception):
    """An error ctcl-map reports to its user; str(error) says what to change."""

    exit_code: int = FAILURE_EXIT_CODE


class UsageError(CtclMapError):
    """The command cannot run as asked: an option value, an input path or an output path."""

    exit_code = USAGE_EXIT_CODE


class OutputPathError(UsageError):
    """The output folder is unusable as given (a file, or a symbolic link leading outside it)."""


class SurvivalSpecError(UsageError):
    """The survival request cannot be run as asked; the message tells the user what to change."""


class CirceUnavailable(SurvivalSpecError):
    """ohdsi-circepy is not installed."""


class CohortIdClash(SurvivalSpecError):
    """The cohort id holds another definition's rows; nothing was overwritten."""


class ConfigurationError(CtclMapError):
    """A file the run is configured with (site mappings, the pseudonym key) cannot be used."""

    exit_code = USAGE_EXIT_CODE


class MappingError(ConfigurationError):
    """A mapping file is malformed; the message names the file, line and column."""


class KeyProblem(ConfigurationError):
    """The pseudonym key cannot be read, made or used."""


class RunFailed(ConfigurationError):
    """Configuration that makes a load impossible (bad mapping file, a pseudonym key not this CDM's)."""


class ValidationFailed(ConfigurationError):
    """Validation cannot start (a malformed mapping file)."""


class InputError(CtclMapError):
    """An input is malformed; it is refused before anything changes."""

    exit_code = USAGE_EXIT_CODE


class AthenaError(InputError):
    """The Athena folder or one of its files is malformed; the message names the file and line."""


class DatabaseError(CtclMapError):
    """A database could not be opened or a statement failed."""


class DatabaseLocked(DatabaseError):
    """Another process holds the DuckDB file open for writing."""


class DatabaseUsageError(DatabaseError):
    """The --db value or a schema name cannot be used as given: a usage error, though about the database."""

    exit_code = USAGE_EXIT_CODE


class CheckSetupError(CtclMapError):
    """A check cannot be expressed for this database (missing helper table, unreadable threshold)."""


class OutputWriteError(CtclMapError):
    """A result could not be written after the job ran (disk full, no permission)."""


class JobFailed(CtclMapError):
    """The job ran to its end and its outcome is a failure (nothing loaded, records quarantined under --strict)."""
