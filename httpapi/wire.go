package httpapi

import (
	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// The wire format. The server and the client share these types so that
// they cannot disagree; the package documentation shows the JSON.

// sectionJSON is a section: its ID and the next section's ID are null
// when application.Section has "".
type sectionJSON struct {
	ID     *string            `json:"id"`
	Items  []notificationJSON `json:"items"`
	NextID *string            `json:"next_id"`
}

// notificationsJSON is the result of a select.
type notificationsJSON struct {
	Items []notificationJSON `json:"items"`
}

// notificationJSON is a notification. State is the exact stored bytes,
// which JSON carries as standard base64 with padding: the server never
// decodes, decompresses or decrypts it.
type notificationJSON struct {
	ID                int64               `json:"id"`
	Tenant            string              `json:"tenant,omitempty"`
	OriginatorID      uuid.UUID           `json:"originator_id"`
	OriginatorVersion int64               `json:"originator_version"`
	Topic             string              `json:"topic"`
	State             []byte              `json:"state"`
	CommitID          uuid.UUID           `json:"commit_id"`
	Headers           persistence.Headers `json:"headers,omitempty"`
}

// errorJSON is the body of every response that is not 200 OK.
type errorJSON struct {
	Error string `json:"error"`
}

func toJSON(ns []persistence.Notification) []notificationJSON {
	out := make([]notificationJSON, len(ns))
	for i, n := range ns {
		out[i] = notificationJSON{
			ID:                n.ID,
			Tenant:            n.Tenant,
			OriginatorID:      n.OriginatorID,
			OriginatorVersion: n.OriginatorVersion,
			Topic:             n.Topic,
			State:             n.State,
			CommitID:          n.CommitID,
			Headers:           n.Headers,
		}
	}
	return out
}

func fromJSON(ns []notificationJSON) []persistence.Notification {
	out := make([]persistence.Notification, len(ns))
	for i, n := range ns {
		out[i] = persistence.Notification{ID: n.ID, Tenant: n.Tenant, StoredEvent: persistence.StoredEvent{
			OriginatorID:      n.OriginatorID,
			OriginatorVersion: n.OriginatorVersion,
			Topic:             n.Topic,
			State:             n.State,
			CommitID:          n.CommitID,
			Headers:           n.Headers,
		}}
		if len(out[i].Headers) == 0 {
			out[i].Headers = nil
		}
	}
	return out
}

// nullable returns nil for "", which the wire format sends as null.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
