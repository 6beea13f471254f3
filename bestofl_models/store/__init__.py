"""The durable record of a run: the SQLite candidate store, what a model is, atomic writes, bestofl's cache folder.

Owns ``store`` (``CandidateStore``: reads and writes), ``database`` (opening: schema, read-only, legacy import,
transactions, errors), ``records`` (candidates, uses, translations, keys, hashes), ``files`` (symlinks, network
file systems), ``identity``
(fingerprints and identity ids of generators, verifiers, translators), ``atomic`` (``atomic_open`` /
``atomic_write``) and ``cache`` (``BESTOFL_CACHE``). The lowest stage: imports no other ``bestofl_models``
package except ``errors``. The names below keep ``from bestofl_models.store import CandidateStore`` working.
"""

from .database import BUSY_TIMEOUT_S, LEGACY_CANDIDATES, SCHEMA_VERSION, STORE_FILE
from .files import NETWORK_FILESYSTEMS, damaged_store_error, mount_type, network_filesystem
from .records import (
    CUT_AT_BUDGET,
    MISSING,
    SETTINGS_TYPES,
    Candidate,
    StoreError,
    StoreNotWritableError,
    Translation,
    Use,
    candidate_key,
    canonical_json,
    normalize_settings,
    prompt_hash,
    text_hash,
    translation_key,
)
from .store import CandidateStore

__all__ = [
    "BUSY_TIMEOUT_S", "CUT_AT_BUDGET", "LEGACY_CANDIDATES", "MISSING", "NETWORK_FILESYSTEMS", "SCHEMA_VERSION",
    "SETTINGS_TYPES", "STORE_FILE", "Candidate", "CandidateStore", "StoreError", "StoreNotWritableError",
    "Translation", "Use", "candidate_key", "canonical_json", "damaged_store_error", "mount_type",
    "network_filesystem", "normalize_settings", "prompt_hash", "text_hash", "translation_key",
]
