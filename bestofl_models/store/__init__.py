"""The durable record of a run: the SQLite candidate store, what a model is, atomic writes, bestofl's cache folder.

Owns ``store`` (candidates, uses, scores, translations, models, runs; the file-system checks), ``identity``
(fingerprints and identity ids of generators, verifiers, translators), ``atomic`` (``atomic_open`` /
``atomic_write``) and ``cache`` (``BESTOFL_CACHE``). The lowest stage: imports no other ``bestofl_models``
package except ``errors``. The names below keep ``from bestofl_models.store import CandidateStore`` working.
"""

from .store import (
    BUSY_TIMEOUT_S,
    CUT_AT_BUDGET,
    LEGACY_CANDIDATES,
    MISSING,
    SCHEMA_VERSION,
    SETTINGS_TYPES,
    STORE_FILE,
    Candidate,
    CandidateStore,
    StoreError,
    StoreNotWritableError,
    Translation,
    Use,
    candidate_key,
    canonical_json,
    damaged_store_error,
    mount_type,
    network_filesystem,
    normalize_settings,
    prompt_hash,
    text_hash,
    translation_key,
)
