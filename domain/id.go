package domain

import "github.com/google/uuid"

// Namespaces for name-based IDs, as defined by RFC 9562.
var (
	NamespaceURL  = uuid.NameSpaceURL
	NamespaceDNS  = uuid.NameSpaceDNS
	NamespaceOID  = uuid.NameSpaceOID
	NamespaceX500 = uuid.NameSpaceX500
)

// NewID returns a new time-ordered (version 7, RFC 9562) aggregate ID:
// 48 bits of Unix milliseconds, then random bits. IDs made one after the
// other sort one after the other, so the new rows of a store's indexes on
// aggregate IDs go to the same few pages instead of one random page each:
// with 16 writers on SQLite, a group commit of new aggregates writes and
// flushes fewer pages (docs/benchmarks.md). The ID tells when it was
// made, to the millisecond; where that must not be known from an ID that
// is shown to others, use NewRandomID.
func NewID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// NewRandomID returns a new random (version 4) aggregate ID, which tells
// nothing of when it was made.
func NewRandomID() uuid.UUID { return uuid.New() }

// NameID returns the name-based (version 5) ID of name in namespace. The
// same name always gives the same ID, so an aggregate with a natural key
// (a page's slug, a counter's name) can be found without an index:
//
//	id := domain.NameID(domain.NamespaceURL, "/pages/Earth")
func NameID(namespace uuid.UUID, name string) uuid.UUID {
	return uuid.NewSHA1(namespace, []byte(name))
}
