//go:build strata_sqlite_cgo && !cgo

package sqlite

// The tag strata_sqlite_cgo asks for the C SQLite, which needs cgo: a
// build without it (CGO_ENABLED=0, or no C compiler) would otherwise
// succeed and fail at run time. This undefined name stops it here, saying
// why; build with CGO_ENABLED=1 and a C compiler, or without the tag.
var _ = strata_sqlite_cgo_needs_CGO_ENABLED_1_and_a_C_compiler
