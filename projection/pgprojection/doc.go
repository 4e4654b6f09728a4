// Package pgprojection keeps read models in a PostgreSQL database: a
// projection's handler gets a pgx.Tx in which it writes its own tables
// while the store records the positions it reached, so that each event is
// applied once.
//
// The store's own tables are strata_projections (the live version of
// each projection, whose row every batch locks), strata_projection_versions
// (the tables of each version), strata_projection_positions and
// strata_projection_parked, in the first schema of the search_path.
// Readers query a model through views (projection.View) that point at the
// live version's tables; a switch replaces the views and drops the old
// version's tables in one transaction. A reader that queries a view
// during the switch waits for it, then reads the new version: never an
// empty or half-built model.
package pgprojection
