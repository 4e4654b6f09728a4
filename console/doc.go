// Package console is Strata's web console for operators: an http.Handler
// that shows the applications of a store, their notification logs, their
// aggregates and snapshots, the lag of followers and projections, and the
// health report, in a browser.
//
// The pages are:
//
//	/                       the applications, with their event counts and last notification
//	/log/{app}              the notification log, a page at a time, filtered by topics,
//	                        with a live tail (server-sent events from /log/{app}/tail)
//	/aggregate/{app}/{id}   an aggregate's decoded events (tenant, commit ID, headers),
//	                        its latest snapshots, and "take a snapshot now"
//	/readers                followers and projections and their lag
//	/health                 the report of a health.Checker
//	/search?id=ID           the aggregate with that ID, in any application
//
// [New] makes a console of some applications; cli's Admin.Console makes
// one of a domain's, and `strata console` serves that.
//
// # Security
//
// A console shows decoded events, so it is locked by default: [New] refuses
// to make one without a bearer token ([WithBearerToken]) or a user and
// password ([WithBasicAuth]) unless [WithoutAuth] says that anyone who can
// reach it may use it. Browsers log in with a form and keep a session
// cookie (HttpOnly, SameSite=Strict, Secure over TLS); scripts send the
// credential with each request. A request without a valid credential gets
// the login page with status 401, whatever it asked for.
//
// Event state never appears in a URL: pages are addressed by application,
// aggregate ID, tenant and notification ID. Decoded state is shown as
// text: html/template escapes it, the live tail sends rows the server
// rendered the same way, and the Content-Security-Policy lets no script run
// but the console's own file, so an event that holds markup cannot run it.
// The one action that writes, taking a snapshot, is a POST that carries a
// CSRF token (a MAC of the session under a random key); http's
// CrossOriginProtection also refuses every POST that a browser says comes
// from another site.
//
// The pages use no front-end framework: html/template, a style sheet and
// one small script, embedded with go:embed.
package console
