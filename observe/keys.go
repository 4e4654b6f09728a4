package observe

import (
	"context"
	"errors"

	"github.com/strata-go/strata/persistence"
)

// The names of the attributes of Strata's spans, metrics and log records.
// Spans, metrics and slog records use the same names, so that a log line
// and the span it belongs to can be matched field by field. None of them
// carries the contents of an event: only names, types, positions and
// counts.
const (
	// KeyApplication names the application.
	KeyApplication = "strata.application"
	// KeyAggregateType names the type of the aggregates of a save or get.
	KeyAggregateType = "strata.aggregate_type"
	// KeyAggregateID is the ID of the aggregate of a get (spans and logs
	// only: it would make too many metric series).
	KeyAggregateID = "strata.aggregate_id"
	// KeyAggregateVersion is the version of the aggregate a get loaded.
	KeyAggregateVersion = "strata.aggregate_version"
	// KeyEventCount is how many events a save recorded or a get read.
	KeyEventCount = "strata.event_count"
	// KeyNotificationID is the ID of one notification.
	KeyNotificationID = "strata.notification_id"
	// KeyFirstNotificationID and KeyLastNotificationID bound the
	// notification IDs of a save, select, batch or HTTP response.
	KeyFirstNotificationID = "strata.notification_id.first"
	KeyLastNotificationID  = "strata.notification_id.last"
	// KeyStart is the first notification ID a select asked for.
	KeyStart = "strata.start"
	// KeyLimit is the most notifications a select asked for.
	KeyLimit = "strata.limit"
	// KeyTopic is the topic of a notification's event (its type's name).
	KeyTopic = "strata.topic"
	// KeyFollower names a process application that follows others.
	KeyFollower = "strata.follower"
	// KeyUpstream names the application a follower or projection reads.
	KeyUpstream = "strata.upstream"
	// KeyProjection names a projection; KeyProjectionVersion is its
	// version.
	KeyProjection        = "strata.projection"
	KeyProjectionVersion = "strata.projection_version"
	// KeyErrorKind is the kind of a failure: one of the Kind constants.
	KeyErrorKind = "strata.error_kind"
	// KeyOperation is what failed or was retried: save, get, select,
	// follower, projection.
	KeyOperation = "strata.operation"
	// KeyHolderPID, KeyHolderApplication and KeyHolderDatabase describe
	// the PostgreSQL backend whose transaction holds the visibility
	// horizon back: its process ID, application_name and database.
	KeyHolderPID         = "strata.postgres.holder_pid"
	KeyHolderApplication = "strata.postgres.holder_application"
	KeyHolderDatabase    = "strata.postgres.holder_database"
	// KeyHTTPMethod, KeyHTTPRoute and KeyHTTPStatus are OpenTelemetry's
	// semantic-convention names of an HTTP request's method, route pattern
	// and response status code.
	KeyHTTPMethod = "http.request.method"
	KeyHTTPRoute  = "http.route"
	KeyHTTPStatus = "http.response.status_code"
)

// The operations of [KeyOperation].
const (
	OpSave       = "save"
	OpGet        = "get"
	OpSelect     = "select"
	OpFollower   = "follower"
	OpProjection = "projection"
	OpRetry      = "retry"
)

// The error kinds of [KeyErrorKind], one per sentinel of the persistence
// error taxonomy (the most specific that the error wraps), and the
// context's errors.
const (
	KindIntegrity        = "integrity"
	KindConflict         = "conflict"
	KindAlreadyCommitted = "already_committed"
	KindUnknownOutcome   = "unknown_outcome"
	KindOperational      = "operational"
	KindErased           = "erased"
	KindWrongKey         = "wrong_key"
	KindCorrupt          = "corrupt"
	KindData             = "data"
	KindNoTable          = "no_table"
	KindReadOnly         = "read_only"
	KindProgramming      = "programming"
	KindNotSupported     = "not_supported"
	KindInternal         = "internal"
	KindInterface        = "interface"
	KindDatabase         = "database"
	KindConfig           = "config"
	KindCanceled         = "canceled"
	KindTimeout          = "timeout"
	KindOther            = "other"
)

// kinds is in order of specificity: the first sentinel an error wraps
// names its kind.
var kinds = []struct {
	err  error
	kind string
}{
	{persistence.ErrUnknownOutcome, KindUnknownOutcome},
	{persistence.ErrIntegrity, KindIntegrity},
	{persistence.ErrAlreadyCommitted, KindAlreadyCommitted},
	{persistence.ErrConflict, KindConflict},
	{persistence.ErrOperational, KindOperational},
	{persistence.ErrErased, KindErased},
	{persistence.ErrWrongKey, KindWrongKey},
	{persistence.ErrCorrupt, KindCorrupt},
	{persistence.ErrData, KindData},
	{persistence.ErrNoTable, KindNoTable},
	{persistence.ErrReadOnly, KindReadOnly},
	{persistence.ErrProgramming, KindProgramming},
	{persistence.ErrNotSupported, KindNotSupported},
	{persistence.ErrInternal, KindInternal},
	{persistence.ErrInterface, KindInterface},
	{persistence.ErrDatabase, KindDatabase},
	{persistence.ErrConfig, KindConfig},
	{context.Canceled, KindCanceled},
	{context.DeadlineExceeded, KindTimeout},
}

// ErrorKind returns the kind of err for [KeyErrorKind]: the most specific
// persistence sentinel it wraps (an integrity error is "integrity", not
// "conflict" or "database"), "canceled" or "timeout" for the context's
// errors, "other" for anything else, and "" for nil.
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	return KindOther
}
