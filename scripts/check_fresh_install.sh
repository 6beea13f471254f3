#!/usr/bin/env bash
# Build a wheel, install it into a brand-new venv (CPU torch first), and check that stock lm-eval
# sees our tasks and models with no flags, that the built-ins still resolve, that the start-up hook
# is cheap and can be switched off. Usage: scripts/check_fresh_install.sh [WORKDIR]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
python="${PYTHON:-python3}"

"$python" -m pip wheel -q --no-deps -w "$work/dist" "$repo"
"$python" -m venv "$work/venv"
v="$work/venv/bin"
"$v/pip" install -q --upgrade pip
"$v/pip" install -q torch==2.13.0
"$v/pip" install -q "$work"/dist/bestofl-*.whl

cd "$work"  # away from the repo, so only the installed wheel can be imported
test -f "$("$v/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/bestofl_autoload.pth"

tasks="$("$v/lm-eval" ls tasks 2>/dev/null)"
for name in mgsm_xling gsm8k_xling gsm8k_xling_train mgsm_xling_en mgsm_xling_te gsm8k_xling_en gsm8k_xling_train_zh mgsm_native_cot_de; do
  grep -q "|$name " <<<"$tasks" || { echo "FAIL: lm-eval ls tasks does not list $name"; exit 1; }
done

"$v/python" - <<'PY'
from lm_eval.api.registry import get_model, model_registry
assert get_model("hf").__name__ == "HFLM"
assert "vllm" in model_registry  # resolving it would import vllm, an optional extra
assert get_model("dummy").__name__ == "DummyLM"
for name, cls in (("bestofl", "BestOfL"), ("multi-orm", "MultiORM"), ("self-consistency", "SelfConsistency")):
    assert get_model(name).__name__ == cls, name
print("models ok")
PY

BESTOFL_AUTOLOAD=0 "$v/python" -c "
from lm_eval.api.registry import get_model, model_registry
get_model('hf'); assert 'bestofl' not in model_registry
print('switch-off ok')"

# Start-up cost of the hook (printed, not a pass/fail timing): cumulative import time in microseconds.
for _ in 1 2 3 4 5; do
  "$v/python" -X importtime -c pass 2>&1 | awk -F'|' '/bestofl_tasks._autoload/ {gsub(/ /,"",$2); print $2}'
done | sort -n | awk '{a[NR]=$1} END {print "start-up hook import time: median " a[int((NR+1)/2)] " us over " NR " runs"}'
echo "fresh wheel install: ok"
