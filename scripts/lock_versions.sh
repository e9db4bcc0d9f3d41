#!/usr/bin/env bash
# Refresh constraints.txt: resolve the project's dependencies afresh from PyPI alone (what a clean machine would
# install today; --isolated ignores local indexes, find-links and pip config) and pin every package exactly.
# Usage: scripts/lock_versions.sh PYTHON [EXTRA_PIN ...]   (`make lock`; EXTRA_PIN: name==version of packages the
# Makefile installs with --no-deps, which pip cannot resolve with the rest). Nothing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:?python of the project venv}
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m pip install --isolated --dry-run --ignore-installed --quiet --report "$work/report.json" \
  -e '.[test,images,fairness]' 2> "$work/pip.log" || { cat "$work/pip.log" >&2; exit 1; }
"$python" - "$work/report.json" "$@" > "$work/constraints.txt" <<'PY'
import json, platform, sys, sysconfig
from benchmark.infra.version_lock import lock_text

report = json.load(open(sys.argv[1]))
sys.stdout.write(lock_text(report, exclude=("crossmodal-bias-benchmark",), extra=tuple(sys.argv[2:]),
                           python=f"{platform.python_implementation()} {platform.python_version()}",
                           platform=sysconfig.get_platform()))
PY
mv "$work/constraints.txt" constraints.txt
echo "wrote constraints.txt ($(grep -c '==' constraints.txt) packages)"
