#!/usr/bin/env bash
# Time the default pipeline (`dvc repro`, first run) of a git revision in a fresh clone, for the 90-second target of
# docs/PERFORMANCE.md: one whole `dvc repro`, as a user runs it, with each stage's share read from the moments DVC
# announces it ("Running stage ...") and the machine's busy CPU seconds (/proc/stat, every process, forked workers
# included) over each share, so the parallelism left unused is visible.
#   usage: scripts/time_pipeline.sh [REVISION=HEAD] [CLONE_DIR=$(mktemp -d)]      (uses this checkout's ./.venv)
# Prints one line per stage: "<stage> <wall s> <busy CPU s> <cores busy on average>", then the total, the pipeline's own
# CPU seconds (user + system of dvc and every process it waited for: what other jobs on a shared machine do not
# inflate, unlike the machine's busy CPU) and the load.
set -euo pipefail
revision=${1:-HEAD}
clone=${2:-$(mktemp -d)}
root=$(cd "$(dirname "$0")/.." && pwd)
git clone -q "$root" "$clone"
git -C "$clone" checkout -q "$revision"
export PATH="$root/.venv/bin:$PATH" PYTHONPATH="$clone"
cd "$clone"
echo "revision $(git rev-parse --short HEAD), $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -f "%e %U %S" -o .time_dvc_repro dvc repro 2>&1 | python -u -c '
import os, re, sys, time

def busy_s():
    """Seconds of CPU time the whole machine has run so far (user, nice, system, irq, softirq; not idle, I/O wait
    or time the hypervisor gave to other machines)."""
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")

log = open(".log.dvc_repro", "w")
marks = [("start", time.perf_counter(), busy_s())]
for line in sys.stdin:
    log.write(line)
    found = re.match(r"Running stage .(\w+).:", line)
    if found:
        marks.append((found.group(1), time.perf_counter(), busy_s()))
marks.append(("end", time.perf_counter(), busy_s()))
for (stage, t0, c0), (_, t1, c1) in zip(marks[1:-1], marks[2:]):
    print(f"{stage:<10} {t1 - t0:7.1f} s wall {c1 - c0:7.1f} s CPU  {(c1 - c0) / (t1 - t0):4.2f} cores")
wall, cpu = marks[-1][1] - marks[0][1], marks[-1][2] - marks[0][2]
print(f"total      {wall:7.1f} s wall {cpu:7.1f} s CPU  {cpu / wall:4.2f} cores (dvc repro from start to exit)")
'
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] || { tail -20 .log.dvc_repro; exit "$status"; }
read -r wall user system < .time_dvc_repro
echo "own CPU    $(python3 -c "print(f'{$user + $system:7.1f}')") s (user $user + system $system) of dvc repro and its processes, $wall s wall"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
