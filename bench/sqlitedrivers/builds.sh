#!/usr/bin/env bash
# Measures Strata's SQLite adapter built both ways, modernc.org/sqlite (the
# default) and github.com/mattn/go-sqlite3 (-tags strata_sqlite_cgo): builds
# strata twice, then runs `strata bench --store sqlite` with each binary in
# turn, ROUNDS times each, alternating which goes first, and prints for each
# case and run the median time per operation of Strata and of the raw
# driver, then the modernc/mattn ratio of each run and their median and
# spread. The raw baseline runs on the adapter's connections, so it changes
# driver with the build too.
#
#   ROUNDS      runs of each build (default 3)
#   BENCH_ARGS  more arguments to strata bench (default: --rounds 3 --round-time 300ms)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-3}
args=${BENCH_ARGS:---rounds 3 --round-time 300ms}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/modernc" ./cmd/strata
CGO_ENABLED=1 go build -tags strata_sqlite_cgo -o "$dir/mattn" ./cmd/strata
for i in $(seq 1 "$rounds"); do
	order="modernc mattn"
	if [ $((i % 2)) -eq 0 ]; then order="mattn modernc"; fi
	for build in $order; do
		echo "run $i $build: load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
		# shellcheck disable=SC2086
		"$dir/$build" bench --store sqlite $args 2>/dev/null |
			awk -v run="$i" -v build="$build" -F '  +' '$1 == "sqlite" { print run "\t" build "\t" $2 " (" $3 " writers)\t" $4 "\t" $5 }' >>"$dir/results.tsv"
	done
done
python3 - "$dir/results.tsv" <<'PY'
import re, statistics, sys
units = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1}
def secs(v):
    m = re.fullmatch(r"([0-9.]+)(ns|µs|us|ms|s)", v.strip())
    return float(m.group(1)) * units[m.group(2)]
rows = {}
for line in open(sys.argv[1]):
    run, build, case, strata, raw = line.rstrip("\n").split("\t")
    rows.setdefault(case, {}).setdefault(build, {})[run] = (secs(strata), secs(raw))
print("| case | side | modernc/op (median) | mattn/op (median) | modernc / mattn per run | median |")
print("|---|---|---|---|---|---|")
for case, builds in rows.items():
    runs = sorted(set(builds.get("modernc", {})) & set(builds.get("mattn", {})))
    for side, k in (("Strata", 0), ("raw driver", 1)):
        mc = [builds["modernc"][r][k] for r in runs]
        ma = [builds["mattn"][r][k] for r in runs]
        ratios = [a / b for a, b in zip(mc, ma)]
        fmt = lambda s: f"{s*1e3:.3g} ms" if s >= 1e-3 else f"{s*1e6:.3g} µs"
        print(f"| {case} | {side} | {fmt(statistics.median(mc))} | {fmt(statistics.median(ma))} | "
              + ", ".join(f"{r:.2f}" for r in ratios) + f" | {statistics.median(ratios):.2f} |")
PY
