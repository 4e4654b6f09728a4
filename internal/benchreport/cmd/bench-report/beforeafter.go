package main

import (
	"fmt"
	"strings"

	"github.com/strata-go/strata/internal/benchreport"
)

// target is what a figure of the before/after table aims at: at most
// (or, with least, at least) value; a zero value is no target.
type target struct {
	value float64
	least bool
	// why explains a target that is not the section's own.
	why string
}

func (t target) String(f figure, measured bool) string {
	if t.value == 0 {
		return "–"
	}
	sign, ok := "≤", f.value <= t.value
	if t.least {
		sign, ok = "≥", f.value >= t.value
	}
	s := sign + " " + benchreport.Number(t.value)
	if t.why != "" {
		s += " (" + t.why + ")"
	}
	if !measured {
		return s
	}
	if ok {
		return s + ": ok" + benchreport.Close(f.value, t.value)
	}
	return s + ": MISSED" + benchreport.Close(f.value, t.value)
}

// before are the figures of the code before the work measured here, taken
// with the same commands on the same machine: the CPU-bound and catch-up
// figures at commit 95e6886, the write path on the commit before group
// commit, the followers on the code before batches (one measurement in
// each of three runs). The single writer on SQLite before group commit is
// the median of four runs of its binary: a first one's 0.88x (0.57–1.23),
// and three more, each beside a run of the code after (3 December 2026).
var before = []struct {
	key, label, before string
	target             target
}{
	{"BenchmarkMapper/encode/JSON/vs_the_standard_library,_same_work", "mapper encode, JSON, vs encoding/json same work", "1.18x (0.29–4.09), 12 allocs", target{value: 1.25}},
	{"BenchmarkMapper/decode/JSON/vs_the_standard_library,_same_work", "mapper decode, JSON, vs encoding/json same work", "1.03x (0.17–2.54), 16 allocs", target{value: 1.25}},
	{"BenchmarkMapper/encode/JSON,_zlib_and_AES-GCM/vs_plain_JSON,_the_standard_library", "mapper encode, JSON + zlib + AES-GCM, vs plain encoding/json", "6.94x (1.03–21.0), 16 allocs", target{value: 3}},
	{"callgrind Mapper/^encode$/^JSON$/same", "instructions, mapper encode JSON vs encoding/json", "1.07x", target{}},
	{"callgrind Mapper/^decode$/^JSON$/same", "instructions, mapper decode JSON vs encoding/json", "0.84x", target{}},
	{"callgrind Mapper/^encode$/zlib/plain", "instructions, encode JSON + zlib + AES-GCM vs plain encoding/json", "7.73x", target{}},
	{"BenchmarkInsert/100_events/vs_appending_to_a_slice", "memory insert of 100 events vs slice append", "3.93x (1.36–17.7), 113 allocs", target{value: 3}},
	{"BenchmarkSaveGet", "memory insert + select of 1 event", "8.41x (0.25–25.0), 6 allocs", target{}},
	{"allocs BenchmarkSaveGet", "allocs/op, memory insert + select of 1 event", "6", target{value: 3, why: "half of before"}},
	{"callgrind Insert/^100_events$", "instructions, memory insert of 100 events vs slice append", "2.63x", target{}},
	{"callgrind SaveGet", "instructions, memory insert + select of 1 event", "22.6x", target{}},
	{"catch-up sqlite", "SQLite catch-up of 100,000 vs raw scan", "1.40x (1.24–1.68)", target{value: 1, why: "the raw scan's speed"}},
	{"catch-up postgres", "PostgreSQL catch-up of 100,000 vs raw scan", "1.75x (1.35–2.99)", target{value: 1, why: "the raw scan's speed"}},
	{"bench sqlite|save 1 event|1|raw INSERT", "SQLite save 1 event, 1 writer, vs raw INSERT", "1.06x, the median of four runs: 0.88x, 1.02x, 1.09x, 1.12x", target{value: 1.055 / 0.95, why: "0.95 of the rate before"}},
	{"bench sqlite|save 1 event, concurrently|16|Strata, one save at a time", "SQLite save 1 event, 16 writers, vs Strata one save at a time", "1.09x (0.83–2.11)", target{value: 1.0 / 6, why: "6x the rate"}},
	{"bench sqlite|save 1 event|16|raw INSERT", "SQLite save 1 event, 16 writers, vs raw INSERT", "1.08x (0.59–1.86)", target{}},
	{"bench sqlite|insert 100 events of 100 new aggregates|1|raw INSERT of the same rows, one transaction", "SQLite insert 100 events of 100 new aggregates vs raw", "0.83x (0.65–1.20)", target{value: 1 / 0.9, why: "0.9 of raw"}},
	{"bench sqlite|insert 100 events of one aggregate|1|raw INSERT of the same rows, one transaction", "SQLite insert 100 events of one aggregate vs raw", "1.09x (1.03–1.38)", target{value: 1 / 0.9, why: "0.9 of raw"}},
	{"bench postgres|save 1 event|1|raw INSERT", "PostgreSQL save 1 event, 1 writer, vs raw INSERT", "1.23x (0.69–1.73)", target{}},
	{"bench postgres|save 1 event, concurrently|16|raw INSERT, a transaction each", "PostgreSQL save 1 event, 16 writers, vs raw INSERT a transaction each", "1.36x (0.97–1.52)", target{value: 1 / 1.3, why: "1.3x the rate"}},
	{"bench postgres|save 1 event, concurrently|16|Strata, one save at a time", "PostgreSQL save 1 event, 16 writers, vs Strata one save at a time", "0.36x (0.25–0.52)", target{}},
	{"bench postgres|insert 100 events of 100 new aggregates|1|raw INSERT of the same rows, one transaction", "PostgreSQL insert 100 events of 100 new aggregates vs raw", "1.09x (0.96–1.26)", target{value: 1 / 0.9, why: "0.9 of raw"}},
	{"bench postgres|insert 100 events of one aggregate|1|raw INSERT of the same rows, one transaction", "PostgreSQL insert 100 events of one aggregate vs raw", "0.90x (0.79–1.51)", target{value: 1 / 0.9, why: "0.9 of raw"}},
	{"follower sqlite", "SQLite follower / leader alone, default batches", "0.62x, 0.13x, 0.16x in three runs; lag p99 0.73–4.3 s", target{value: 0.8, least: true}},
	{"follower postgres", "PostgreSQL follower / leader alone, default batches", "1.02x, 0.81x, 1.46x in three runs; lag p99 0.79–5.2 s", target{value: 0.8, least: true}},
}

// earlierRun marks a figure that this run did not measure, kept from the
// table as the last run left it.
const earlierRun = " (earlier run)"

func beforeAfterSection() (string, error) {
	// The figures of the sections not measured in this run are those the
	// file had, with their targets checked again.
	kept := map[string]figure{}
	if body, ok := benchreport.Section(previous, "cpu-before-after"); ok {
		for _, cells := range benchreport.TableRows(body) {
			if len(cells) < 3 || cells[2] == "" || strings.HasPrefix(cells[2], "not measured") {
				continue
			}
			text := strings.TrimSuffix(cells[2], earlierRun)
			var v float64
			fmt.Sscanf(text, "%g", &v)
			kept[cells[0]] = figure{text, v}
		}
	}
	var b strings.Builder
	b.WriteString("| figure | before | after | target (after) |\n|---|---|---|---|\n")
	for _, f := range before {
		a, ok := after[f.key]
		text := a.text
		if !ok {
			if a, ok = kept[f.label]; ok {
				text = a.text + earlierRun
			} else {
				text = "not measured"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", f.label, f.before, text, f.target.String(a, ok))
	}
	return b.String(), nil
}
