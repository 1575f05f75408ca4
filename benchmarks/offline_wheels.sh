#!/usr/bin/env bash
# Wheels for a GPU machine without internet access that has its own CUDA torch, scikit-learn,
# TensorBoard, pandas and pyarrow, but not the rest of what hypersweep needs. Saved into .whl/ (git
# ignores it) at the versions installed in .venv, for CPython 3.12 on x86-64 Linux unless told
# otherwise. Ray's wheel is repacked without its Java jar (31 MiB packed; nothing here starts Java
# workers), so that the whole set fits a 64 MiB transfer.
#
#   bash benchmarks/offline_wheels.sh [python-version]        # then see benchmarks/gpu_device.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python_version=${1:-3.12}
out=.whl
# Ray and Ray Tune's own needs that such an image lacks, then Hydra's and hyperopt.
packages=(ray jsonschema jsonschema-specifications referencing rpds-py pydantic pydantic-core
          annotated-types typing-inspection typing-extensions tensorboardX hydra-core omegaconf hyperopt)

# NAME==VERSION for each name, as installed in .venv.
pinned() { .venv/bin/python -c 'import sys; from importlib.metadata import version
print(" ".join(f"{name}=={version(name)}" for name in sys.argv[1:]))' "$@"; }

rm -rf "$out" && mkdir -p "$out"
read -ra pins <<< "$(pinned "${packages[@]}")"
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$python_version" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$out" "${pins[@]}"
# Hydra's parser runtime is published as source only; it is pure Python, so a wheel built here works.
python3 -m pip wheel --quiet --no-deps -w "$out" "$(pinned antlr4-python3-runtime)"

ray_wheel=$(ls "$out"/ray-*.whl)
python3 - "$ray_wheel" <<'EOF'
import os, sys, zipfile
wheel = sys.argv[1]
slim = wheel + ".slim"
with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as target:
    for item in source.infolist():
        if item.filename.startswith("ray/jars/"):
            continue
        data = source.read(item)
        if item.filename.endswith(".dist-info/RECORD"):  # its list of files stays true
            data = b"".join(line + b"\n" for line in data.splitlines()
                            if not line.startswith(b"ray/jars/"))
        target.writestr(item, data)
os.replace(slim, wheel)
EOF
du -sh "$out"
