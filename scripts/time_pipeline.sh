#!/usr/bin/env bash
# Time the default pipeline (`dvc repro`, first run) of a git revision in a fresh clone, stage by stage, for the
# 90-second target of docs/PERFORMANCE.md. Each stage runs as `dvc repro --single-item <stage>` in pipeline order, so
# the sum is the whole pipeline plus DVC's start-up per stage; the last line is that sum.
#   usage: scripts/time_pipeline.sh [REVISION=HEAD] [CLONE_DIR=$(mktemp -d)]      (uses this checkout's ./.venv)
# Prints one line per stage: "<stage> <wall s> <user s> <sys s> <peak RSS MB>", then "total <wall s>" and the load.
set -euo pipefail
revision=${1:-HEAD}
clone=${2:-$(mktemp -d)}
root=$(cd "$(dirname "$0")/.." && pwd)
git clone -q "$root" "$clone"
git -C "$clone" checkout -q "$revision"
export PATH="$root/.venv/bin:$PATH" PYTHONPATH="$clone"
cd "$clone"
echo "revision $(git rev-parse --short HEAD), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
stages=$(python - <<'PY'
import yaml

print(" ".join(yaml.safe_load(open("dvc.yaml"))["stages"]))
PY
)
total=0
for stage in $stages; do
  /usr/bin/time -o ".time.$stage" -f "%e %U %S %M" dvc repro --single-item "$stage" >".log.$stage" 2>&1 \
    || { tail -20 ".log.$stage"; exit 1; }
  read -r wall user sys rss <".time.$stage"
  printf '%-10s %7.1f s wall %7.1f s user %6.1f s sys %6.0f MB\n' "$stage" "$wall" "$user" "$sys" "$((rss / 1024))"
  total=$(python -c "print($total + $wall)")
done
printf 'total      %7.1f s wall; load after: %s\n' "$total" "$(cut -d' ' -f1-3 /proc/loadavg)"
