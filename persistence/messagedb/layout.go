package messagedb

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// This file is the layout of Strata's data in Message DB, in one place:
// stream names, the version mapping, and what a message's type, data and
// metadata hold. docs/messagedb.md describes it for readers of the store.

// SnapshotType is the message type of snapshots, as Protean writes them.
const SnapshotType = "SNAPSHOT"

// uuidLen is the length of a UUID in its canonical text form.
const uuidLen = 36

// StreamName returns the stream of an aggregate in category: Protean's
// <category>-<ID>, and, for a tenant other than the default one,
// <category>-<ID>+<tenant>, a compound ID whose cardinal ID is the
// aggregate's (so that consumer groups keep an aggregate's streams
// together).
func StreamName(category, tenant string, id uuid.UUID) string {
	if tenant == "" {
		return category + "-" + id.String()
	}
	return category + "-" + id.String() + "+" + tenant
}

// SnapshotCategory returns the category of an aggregate recorder's streams
// for purpose: Protean's <category>:snapshot for snapshots, and
// <category>:<purpose> for others.
func SnapshotCategory(category, purpose string) string {
	if purpose == "snapshots" {
		return category + ":snapshot"
	}
	return category + ":" + purpose
}

// ParseStreamName returns the aggregate and the tenant of a stream of
// category, or false if the stream is not one that Strata names.
func ParseStreamName(category, stream string) (uuid.UUID, string, bool) {
	rest, ok := strings.CutPrefix(stream, category+"-")
	if !ok || len(rest) < uuidLen {
		return uuid.Nil, "", false
	}
	id, err := uuid.Parse(rest[:uuidLen])
	if err != nil {
		return uuid.Nil, "", false
	}
	switch rest = rest[uuidLen:]; {
	case rest == "":
		return id, "", true
	case rest[0] == '+' && len(rest) > 1:
		return id, rest[1:], true
	}
	return uuid.Nil, "", false
}

// tenantSuffix returns what follows the aggregate ID in the stream names
// of tenant, and the 1-based character position where it starts in
// streams of category: PostgreSQL's substr counts characters.
func tenantSuffix(category, tenant string) (string, int) {
	if tenant == "" {
		return "", 0
	}
	return "+" + tenant, utf8.RuneCountInString(category) + 1 + uuidLen + 1
}

// strataMeta is what Strata adds to a message's metadata, under "strata",
// to read back exactly what it recorded.
type strataMeta struct {
	// Version is the aggregate's Strata version: position + the version
	// of the stream's first message.
	Version int64 `json:"version"`
	// Topic is the event's topic when the message type is a short name.
	Topic string `json:"topic,omitempty"`
	// Timestamp, CreatedOn and ClassVersion are the parts of the mapper's
	// state that are not the event's data, kept verbatim.
	Timestamp    json.RawMessage `json:"timestamp,omitempty"`
	CreatedOn    json.RawMessage `json:"created_on,omitempty"`
	ClassVersion json.RawMessage `json:"class_version,omitempty"`
	// Encoding is "base64" for state that is not the mapper's JSON (it is
	// encrypted, compressed, or other bytes): data is then
	// {"base64": "..."}.
	Encoding string              `json:"encoding,omitempty"`
	CommitID *uuid.UUID          `json:"commit_id,omitempty"`
	Headers  persistence.Headers `json:"headers,omitempty"`
}

// envelope is the mapper's JSON state, split into its parts.
type envelope struct {
	Timestamp    json.RawMessage `json:"timestamp"`
	CreatedOn    json.RawMessage `json:"created_on,omitempty"`
	ClassVersion json.RawMessage `json:"class_version"`
	Data         json.RawMessage `json:"data"`
}

// splitState returns the data of a message for state, and sets the
// metadata that rebuilds state from it. State that is the mapper's JSON
// becomes the event's own data, readable by any Message DB consumer;
// anything else is kept as base64.
func splitState(state []byte, meta *strataMeta) []byte {
	if env, ok := parseEnvelope(state); ok {
		meta.Timestamp, meta.CreatedOn, meta.ClassVersion = env.Timestamp, env.CreatedOn, env.ClassVersion
		return env.Data
	}
	meta.Encoding = "base64"
	b, _ := json.Marshal(map[string]string{"base64": base64.StdEncoding.EncodeToString(state)})
	return b
}

// parseEnvelope splits state if it is exactly the mapper's JSON state,
// and its data survives jsonb (which refuses the NUL character).
func parseEnvelope(state []byte) (envelope, bool) {
	var env envelope
	if len(state) == 0 || state[0] != '{' || !json.Valid(state) {
		return env, false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(state, &fields) != nil {
		return env, false
	}
	for k := range fields {
		switch k {
		case "timestamp", "created_on", "class_version", "data":
		default:
			return env, false
		}
	}
	env = envelope{Timestamp: fields["timestamp"], CreatedOn: fields["created_on"], ClassVersion: fields["class_version"], Data: fields["data"]}
	var ts time.Time
	var cv int
	if env.Timestamp == nil || env.ClassVersion == nil || env.Data == nil ||
		json.Unmarshal(env.Timestamp, &ts) != nil || json.Unmarshal(env.ClassVersion, &cv) != nil ||
		bytes.Contains(env.Data, []byte(`\u0000`)) {
		return env, false
	}
	return env, true
}

// message is a row of Message DB as recorders read it.
type message struct {
	globalPosition int64
	stream         string
	position       int64
	version        int64
	typ            string
	data           []byte // JSON, or nil
	metadata       []byte // JSON, or nil
	time           time.Time
	createdOn      *time.Time // for snapshots written without Strata's metadata
}

// foreignMeta is what Strata reads of metadata that it did not write:
// Protean's class version and correlation.
type foreignMeta struct {
	Domain struct {
		Version       json.RawMessage `json:"version"`
		CorrelationID *string         `json:"correlation_id"`
		CausationID   *string         `json:"causation_id"`
	} `json:"domain"`
	Strata *strataMeta `json:"strata"`
}

// stored rebuilds the stored event that m records. topicOf maps message
// types to topics.
func (m message) stored(topicOf func(string) string, defaultTopic string) (persistence.StoredEvent, error) {
	var meta foreignMeta
	if len(m.metadata) > 0 {
		if err := json.Unmarshal(m.metadata, &meta); err != nil {
			return persistence.StoredEvent{}, fmt.Errorf("%w: metadata of message %d (%s position %d): %v", persistence.ErrCorrupt, m.globalPosition, m.stream, m.position, err)
		}
	}
	e := persistence.StoredEvent{OriginatorVersion: m.version, Topic: topicOf(m.typ)}
	if s := meta.Strata; s != nil {
		if s.Topic != "" {
			e.Topic = s.Topic
		}
		if s.CommitID != nil {
			e.CommitID = *s.CommitID
		}
		e.Headers = s.Headers
		if s.Encoding == "base64" {
			var d struct {
				Base64 []byte `json:"base64"`
			}
			if err := json.Unmarshal(m.data, &d); err != nil {
				return e, fmt.Errorf("%w: data of message %d (%s position %d): %v", persistence.ErrCorrupt, m.globalPosition, m.stream, m.position, err)
			}
			e.State = d.Base64
			if e.State == nil {
				e.State = []byte{}
			}
			return e, nil
		}
		e.State = joinState(envelope{Timestamp: s.Timestamp, CreatedOn: s.CreatedOn, ClassVersion: s.ClassVersion, Data: m.data})
		return e, nil
	}
	// A message of another program: Protean's layout.
	if m.typ == SnapshotType {
		e.Topic = defaultTopic
	}
	env := envelope{ClassVersion: json.RawMessage("1"), Data: m.data}
	var cv int
	if json.Unmarshal(meta.Domain.Version, &cv) == nil && cv > 0 {
		env.ClassVersion = meta.Domain.Version
	}
	env.Timestamp, _ = json.Marshal(m.time)
	if m.createdOn != nil {
		env.CreatedOn, _ = json.Marshal(*m.createdOn)
	}
	e.State = joinState(env)
	if c := meta.Domain.CorrelationID; c != nil && *c != "" {
		e.Headers = persistence.Headers{persistence.HeaderCorrelationID: *c}
	}
	if c := meta.Domain.CausationID; c != nil && *c != "" {
		if e.Headers == nil {
			e.Headers = persistence.Headers{}
		}
		e.Headers[persistence.HeaderCausationID] = *c
	}
	return e, nil
}

// joinState is the reverse of splitState for the mapper's JSON state.
func joinState(env envelope) []byte {
	if env.Data == nil {
		env.Data = json.RawMessage("null")
	}
	b, err := json.Marshal(env)
	if err != nil {
		// Only invalid JSON in a part fails, and the parts came from
		// jsonb columns or were checked when written.
		return nil
	}
	return b
}

// eventMetadata is the metadata of an event message: Protean's headers
// and domain sections, which Eventide and Protean consumers read, and
// Strata's own.
func eventMetadata(stream, category, typ string, s *strataMeta, kind string) []byte {
	var classVersion json.RawMessage = json.RawMessage("1")
	if s.ClassVersion != nil {
		classVersion = s.ClassVersion
	}
	type headers struct {
		Type   string          `json:"type"`
		Stream string          `json:"stream"`
		Time   json.RawMessage `json:"time,omitempty"`
	}
	type domain struct {
		Kind           string          `json:"kind"`
		StreamCategory string          `json:"stream_category"`
		Version        json.RawMessage `json:"version"`
		CorrelationID  string          `json:"correlation_id,omitempty"`
		CausationID    string          `json:"causation_id,omitempty"`
	}
	md := struct {
		Headers headers     `json:"headers"`
		Domain  domain      `json:"domain"`
		Strata  *strataMeta `json:"strata"`
	}{
		Headers: headers{Type: typ, Stream: stream, Time: s.Timestamp},
		Domain: domain{Kind: kind, StreamCategory: category, Version: classVersion,
			CorrelationID: s.Headers[persistence.HeaderCorrelationID], CausationID: s.Headers[persistence.HeaderCausationID]},
		Strata: s,
	}
	b, _ := json.Marshal(md)
	return b
}

// messageID returns the Message DB ID of the k-th message (from 0) that a
// commit writes to a stream. Message DB refuses a second message with an
// ID it has, so a commit recorded again is refused by Message DB itself,
// at whatever versions; a save without a commit ID gets random IDs, as
// Protean's client gives.
func messageID(commit uuid.UUID, stream string, k int) uuid.UUID {
	if commit == uuid.Nil {
		return uuid.New()
	}
	return uuid.NewSHA1(commit, fmt.Appendf(nil, "%s/%d", stream, k))
}
