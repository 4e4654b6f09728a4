package domain

import "github.com/google/uuid"

// Namespaces for name-based IDs, as defined by RFC 9562.
var (
	NamespaceURL  = uuid.NameSpaceURL
	NamespaceDNS  = uuid.NameSpaceDNS
	NamespaceOID  = uuid.NameSpaceOID
	NamespaceX500 = uuid.NameSpaceX500
)

// NewID returns a new random (version 4) aggregate ID.
func NewID() uuid.UUID { return uuid.New() }

// NameID returns the name-based (version 5) ID of name in namespace. The
// same name always gives the same ID, so an aggregate with a natural key
// (a page's slug, a counter's name) can be found without an index:
//
//	id := domain.NameID(domain.NamespaceURL, "/pages/Earth")
func NameID(namespace uuid.UUID, name string) uuid.UUID {
	return uuid.NewSHA1(namespace, []byte(name))
}
