#!/usr/bin/env bash
# Every GPU check in one run, for a machine with a CUDA GPU: the eager optimizer step against
# torch's own on CUDA (tests/test_eager_optim.py), then the CNN sweep at 1, 2 and 4 trials per GPU
# (benchmarks/gpu.py). On a machine without internet access, put the wheels of
# benchmarks/offline_wheels.sh in .whl/ first: they are installed beside its own torch. The output
# also goes to $OUT/gpu.log where OUT is set (the folder a remote run brings back), else /tmp.
#
#   bash benchmarks/gpu_device.sh [gpu.py arguments...]
set -uo pipefail
cd "$(dirname "$0")/.."
log=${OUT:-/tmp}/gpu.log
if [ -d .whl ]; then
    python3 -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import ray, torch; print('torch', torch.__version__, 'CUDA', torch.cuda.is_available(),
'ray', ray.__version__, 'CPUs', __import__('os').cpu_count())"
    python3 -m pytest -q -p no:cacheprovider -rs tests/test_eager_optim.py
    python3 benchmarks/gpu.py "$@"
} 2>&1 | tee "$log"
