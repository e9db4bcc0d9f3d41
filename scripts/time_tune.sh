#!/usr/bin/env bash
# Time `benchmark tune --n-trials N` on the default source in a fresh copy of this working tree (the tuning issue's
# target: 30 trials in under 3 minutes), then print each trial's state, duration, configuration and value.
#   usage: scripts/time_tune.sh [N_TRIALS=30] [COPY_DIR=$(mktemp -d)]      (uses ./.venv)
set -euo pipefail
n_trials=${1:-30}
copy=${2:-$(mktemp -d)}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$copy"
(cd "$root" && git ls-files -co --exclude-standard | tar cf - -T -) | (cd "$copy" && tar xf -)
source "$root/.venv/bin/activate"
cd "$copy"
benchmark fetch >/dev/null
/usr/bin/time -f "benchmark tune --n-trials $n_trials: %e s wall, %U s user" \
    benchmark tune --n-trials "$n_trials" 2> tune.err >/dev/null || { cat tune.err; exit 1; }
tail -1 tune.err
python - <<'PY'
import collections

import optuna

study = optuna.load_study(study_name="corrector", storage="sqlite:///optuna.db")
print(dict(collections.Counter(t.state.name for t in study.trials)), "best value", round(study.best_value, 2))
for t in study.trials:
    seconds = (t.datetime_complete - t.datetime_start).total_seconds()
    last_epoch = max(t.intermediate_values, default=None)
    print(f"trial {t.number:3d} {t.state.name:8s} {seconds:5.1f} s  last reported epoch {last_epoch}  {t.params}  "
          f"{[round(v, 2) for v in t.values or []]}")
PY
echo "copy: $copy"
