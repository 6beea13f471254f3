"""adaptive= and languages=auto:FILE through the stock ``lm_eval`` CLI (a subprocess, tiny fixtures): the results
JSON's bestofl block, the --log_samples rows and the run summary line."""

from __future__ import annotations

import json

import fixtures  # tests/ is on sys.path (rootdir conftest)
import pytest
from test_results_cli import lm_eval

from bestofl_models import testing
from bestofl_models.selection.pool import RECOMMENDED_POOL_FILE, RECOMMENDED_POOL_FORMAT

pytestmark = pytest.mark.slow


def test_adaptive_run_with_a_recommended_pool_file(tmp_path):
    pool_file = tmp_path / "recommended" / RECOMMENDED_POOL_FILE
    pool_file.parent.mkdir()
    pool_file.write_text(json.dumps({"format": RECOMMENDED_POOL_FORMAT, "version": 1, "pool": ["en", "fr"],
                                     "generator_id": "generator-elsewhere"}), encoding="utf-8")
    args = {"pretrained": testing.tiny_generator(), "verifier": fixtures.tiny_chat_reward_model(), "n": 6,
            "languages": f"auto:{pool_file.parent}", "adaptive": "margin:1", "max_gen_toks": 8,
            "store": tmp_path / "store"}
    results, rows, stderr = lm_eval(tmp_path, args, "out")
    info = results["config"]["bestofl"]
    assert (info["pool"], info["languages_file"], info["adaptive"]) == (["en", "fr"], str(pool_file), "margin:1")
    used = [len(row["candidates"]) for row in rows]
    assert all(count in (2, 4, 6) for count in used)
    assert info["samples_used"] == {"adaptive": "margin:1", "n": 6, "requests": 2, "total": sum(used),
                                    "mean_per_request": sum(used) / 2, "generated": sum(used)}
    assert "was chosen for generator generator-elsewhere" in stderr
    assert "the target language de is not in the pool en:fr" in stderr and "languages=en:fr:de" in stderr
    assert f"adaptive=margin:1: {sum(used) / 2:.2f} of n=6 samples per request" in stderr
