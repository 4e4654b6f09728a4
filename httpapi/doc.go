// Package httpapi serves the notification log of an application over HTTP
// as JSON, and reads it back: the reference design's
// NotificationLogJSONService and NotificationLogJSONClient. With it, the
// followers of an application can run in other processes than their
// leader.
//
// On the server side, [NewHandler] turns any application.NotificationLog
// (usually app.AllTenants(), every tenant's log, or app.Log(), the default
// tenant's) into a read-only http.Handler, to mount in a mux of
// one's own, behind [WithBearerToken] if the network is not trusted.
// [NewServer] wraps a handler in an *http.Server with timeouts fit for the
// internet, and [Serve] runs it, with TLS if given a certificate, until a
// context ends.
//
// On the client side, a [Client] is an application.NotificationLog too:
// code that follows a local log follows a remote one unchanged, and gets
// the same errors (application.ErrSectionID, application.ErrQuery, the
// persistence error kinds, and [ErrUnauthorized]).
//
// # Wire format
//
// GET {base}/sections/{id}, where id is a section ID such as "1,10", answers
//
//	{"id": "1,4", "items": [ITEM, ...], "next_id": null}
//
// where "id" is null if the section has no notifications, and "next_id" is
// the next section's ID, or null if this section has fewer notifications
// than were asked for (the reader has caught up, for now).
//
// GET {base}/notifications?start=N&limit=M, with optional topics=a,b (or
// topics=a&topics=b) and stop=K, selects up to M notifications from ID N
// whose topics are among the given ones (or the aliases of their types),
// up to ID K (0 means no stop), and answers
//
//	{"items": [ITEM, ...]}
//
// Each ITEM is a notification:
//
//	{"id": 5, "tenant": "acme", "originator_id": "0b9ab1a2-...", "originator_version": 3,
//	 "topic": "World.SomethingHappened", "state": "eyJ0aW1l...",
//	 "commit_id": "5f0c...", "headers": {"correlation_id": "order-7"}}
//
// where "tenant" (absent for the default tenant) is the aggregate's tenant,
// "commit_id" and "headers" are the save's (headers absent if it had none),
// and "state" is the stored bytes, in standard base64 with padding. The
// server never decodes them: if the application encrypts its events, they
// stay encrypted from its datastore to the reader, who needs the cipher key
// to decode them with its mapper (app.Mapper().ToEvent).
//
// HEAD is allowed wherever GET is. Answers other than 200 OK have a JSON
// body {"error": "message"} and one of these statuses:
//
//	400  a malformed section ID; a start, limit or stop that is not a whole
//	     number in range (0 <= start, 1 <= limit <= application.MaxLimit,
//	     0 <= stop); an unknown or empty topic; an unknown or repeated
//	     parameter
//	401  a missing or wrong bearer token, with "WWW-Authenticate: Bearer"
//	404  a path other than the two above
//	405  a method other than GET and HEAD, with "Allow: GET, HEAD"
//	500  a failure of the log (logged, not explained)
//	503  an operational failure of the log, such as a lost database
//	     connection or a timeout: try again later
//
// A limit above application.MaxLimit is refused rather than cut down, as
// the local log refuses it, so that a reader never mistakes a shortened
// answer for the end of the log.
package httpapi
