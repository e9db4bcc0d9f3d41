#!/usr/bin/env bash
# Refit the shipped simulation scenarios (benchmark/scenarios/{paper,null,age}.yaml) from the authors' published outputs.
# Usage: scripts/fit_scenarios.sh [FOLDER]   FOLDER holds the two pinned CSVs (default: ../shared/data/paper-outputs).
# Deterministic: the same CSVs give the same bytes. Run from the project root with the venv's `benchmark` on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
published=$(realpath "${1:-../shared/data/paper-outputs}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'data:\n  source: published\n  input: %s\n' "$published" > "$work/params.yaml"
(cd "$work" && benchmark -q fetch --params params.yaml >/dev/null)
tables=("$work/data/outputs/faces.parquet" "$work/data/outputs/adfes.parquet")
benchmark simulate fit "${tables[@]}" -o benchmark/scenarios/paper.yaml --name paper \
  --description "Fitted to the authors' published FairFace and EmoNet outputs of FACES and ADFES, with their real designs."
benchmark simulate fit "${tables[@]}" -o benchmark/scenarios/null.yaml --name null --dependence none \
  --description "The paper scenario's marginals with every cross-modal dependence removed: a null for cross-modal methods."
benchmark simulate fit "$work/data/outputs/faces.parquet" -o benchmark/scenarios/age.yaml --name age \
  --cells-by gender,age_group \
  --description "Fitted to the authors' published FairFace (gender and 9 age bins) and EmoNet outputs of FACES, cells by gender x age group x emotion, with the real design."
