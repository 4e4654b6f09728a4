package benchsuite

// Report is every result of one run of strata bench, each round's figures
// included: what `strata bench --json` writes and scripts/bench-report
// reads, so that the report is made from the measurements rather than
// from the text of the tables.
type Report struct {
	Results       []Result              `json:"results"`
	CatchUpMemory []CatchUpMemoryResult `json:"catchUpMemory"`
	System        []SystemResult        `json:"system"`
	Projection    []ProjectionResult    `json:"projection"`
	// Machine is the line that describes the machine (CPU, cores, Go).
	Machine string `json:"machine"`
}
