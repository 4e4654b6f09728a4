package mongodb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/strata-go/strata/internal/sqlstore"
	"github.com/strata-go/strata/persistence"
)

// Claims decide conflicts by the unique _id alone. Before a writer inserts
// its document at position pos, it inserts one claim per thing the save
// takes — each (aggregate, version), its commit for each aggregate, its
// tracking position — with an _id made of what it takes and a sequence
// number k ("v ... 7#0"), and with pos and the nonce of the document it is
// about to insert. A claim holds once a document with its nonce is at its
// position (it is *live*); if another document took the position, it never
// will (an *orphan*). Two writers of one version therefore insert the same
// _id, and the second is refused; it reads the claim and looks at the log
// at the claim's position:
//
//   - the claimant's document is there: the version is taken;
//   - another document is there: the claim is an orphan, try k+1;
//   - the claim is for the writer's own position: both race for it, try
//     k+1, and the unique _id of the log lets only one of the two documents
//     in (so only one of the claims becomes live);
//   - the claim is for a later position: the writer's view of the log's end
//     is old; it reads the end again and starts over.
//
// Every position below the one a writer inserts at holds a document (the
// log is dense and documents are never removed), so no claim below it can
// be pending. Deletions and purges start new epochs instead of removing
// claims: the claim of a version names the tenant's purge epoch and the
// aggregate's deletion epoch, which are the numbers of the last live purge
// and deletion claims below the writer's position. docs/mongodb.md has the
// proof.
type claims struct {
	coll *mongo.Collection // the claims
	log  *mongo.Collection // the log whose positions they name
	mu   sync.Mutex
	// known holds the nonces of documents read at positions below some
	// writer's position. A document at a position is never replaced, so
	// the answer never changes, and a large save's claims, all at one
	// position, cost one read.
	known map[int64]int64
}

// maxKnown bounds the claims' cache of positions' nonces: it is emptied
// when full, since a long-lived process would otherwise keep one entry per
// contended position it ever met.
const maxKnown = 4096

// claimDoc is a claim: that the document with nonce Nonce at position Pos
// takes what ID names.
type claimDoc struct {
	ID    string `bson:"_id"`
	Pos   int64  `bson:"pos"`
	Nonce int64  `bson:"w"`
	// Tenant and Epoch are the claimant's tenant and its purge epoch, on
	// tracking claims, whose _id names no tenant: a purge of the tenant
	// forgets them.
	Tenant string `bson:"t,omitempty"`
	Epoch  int64  `bson:"pe,omitempty"`
}

// errStale says that the writer's idea of the log's end is older than a
// claim it met: it must read the end again and start over.
var errStale = errors.New("the log's end moved")

// Keys of claims. Strings are quoted, so that no tenant or purpose can
// make one key look like another.
func versionKey(tenant string, pe int64, purpose string, id uuid.UUID, de, v int64) string {
	return fmt.Sprintf("v %q %d %q %s %d %d", tenant, pe, purpose, id, de, v)
}

func commitKey(tenant string, pe int64, c, id uuid.UUID, de int64) string {
	return fmt.Sprintf("c %q %d %s %s %d", tenant, pe, c, id, de)
}

func trackingKey(app string, n int64) string { return fmt.Sprintf("tr %q %d", app, n) }

func deletionKey(tenant string, id uuid.UUID) string { return fmt.Sprintf("d %q %s", tenant, id) }

func purgeKey(tenant string) string { return fmt.Sprintf("p %q", tenant) }

func seq(base string, k int) string { return base + "#" + strconv.Itoa(k) }

// state is what a claim met below or at a writer's position is.
type state int

const (
	live   state = iota // its document is at its position
	orphan              // another document is at its position
	racing              // it is for the writer's own position
)

// judge tells what claim c is to a writer about to insert at pos.
func (cl *claims) judge(ctx context.Context, c *claimDoc, pos int64) (state, error) {
	switch {
	case c.Pos > pos:
		return 0, fmt.Errorf("%w: claim %s is for position %d, after %d", errStale, c.ID, c.Pos, pos)
	case c.Pos == pos:
		return racing, nil
	}
	cl.mu.Lock()
	there, ok := cl.known[c.Pos]
	cl.mu.Unlock()
	if !ok {
		var d struct {
			Nonce int64 `bson:"w"`
		}
		err := cl.log.FindOne(ctx, bson.D{{Key: "_id", Value: c.Pos}}, options.FindOne().SetProjection(bson.D{{Key: "w", Value: 1}})).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			// Below the end, yet no document: a read that has not caught
			// up with the end it saw. Start over.
			return 0, fmt.Errorf("%w: no document at position %d of claim %s, below the end %d", errStale, c.Pos, c.ID, pos)
		}
		if err != nil {
			return 0, err
		}
		there = d.Nonce
		cl.mu.Lock()
		if cl.known == nil || len(cl.known) >= maxKnown {
			cl.known = map[int64]int64{}
		}
		cl.known[c.Pos] = there
		cl.mu.Unlock()
	}
	if there == c.Nonce {
		return live, nil
	}
	return orphan, nil
}

// read returns the claim with the _id, or nil if there is none.
func (cl *claims) read(ctx context.Context, id string) (*claimDoc, error) {
	var c claimDoc
	err := cl.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// epoch returns the number of the last live claim of the sequence base
// below pos (purges of a tenant, deletions of an aggregate), or 0. The
// claims of a sequence are numbered from 1 without gaps, since each is
// inserted after the one before it was refused.
func (cl *claims) epoch(ctx context.Context, base string, pos int64) (int64, error) {
	var last int64
	for k := 1; ; k++ {
		c, err := cl.read(ctx, seq(base, k))
		if err != nil || c == nil || c.Pos >= pos {
			// A claim at or after pos is of a deletion that, if it
			// happens, comes after the writer's document; so are the
			// ones after it in the sequence.
			return last, err
		}
		st, err := cl.judge(ctx, c, pos)
		if err != nil {
			return 0, err
		}
		if st == live {
			last = int64(k)
		}
	}
}

// claim is one thing a save takes.
type claim struct {
	base  string
	first int // the first sequence number: 0, or 1 for epochs
	// stack: a live claim is not a conflict but an earlier one of a
	// sequence (deletions, purges); the claim takes the next number.
	stack bool
	// forgotten reports whether a live claim no longer counts (a tracking
	// record of a tenant purged since).
	forgotten func(ctx context.Context, c *claimDoc) (bool, error)
	tenant    string
	epoch     int64
	// found is the live claim that stands in the way, once take returns.
	found *claimDoc
}

// take inserts the claims for the document with nonce at pos. It returns
// errStale if the writer must read the log's end again, another error if
// a claim could not be inserted or read, and nil otherwise; a claim that
// stands in the way is then in its found field. Claims it inserted before
// failing are orphans once another document takes pos, and a writer at pos
// takes the next numbers meanwhile.
//
// If stop is not nil and reports true for the index of a claim that met
// one in its way, the claims after it are left unresolved.
func (cl *claims) take(ctx context.Context, pos, nonce int64, cs []*claim, stop func(i int) bool) error {
	if len(cs) == 0 {
		return nil
	}
	// The first number of every claim in one round trip: unless another
	// writer meets the same ones, that is all.
	docs := make([]any, len(cs))
	for i, c := range cs {
		docs[i] = claimDoc{ID: seq(c.base, c.first), Pos: pos, Nonce: nonce, Tenant: c.tenant, Epoch: c.epoch}
	}
	_, err := cl.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return nil
	}
	var bw mongo.BulkWriteException
	if !errors.As(err, &bw) || bw.WriteConcernError != nil || len(bw.WriteErrors) == 0 {
		return err
	}
	var refused []int
	for _, we := range bw.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) {
			return err
		}
		refused = append(refused, we.Index)
	}
	slices.Sort(refused)
	for _, i := range refused {
		if err := cl.takeOne(ctx, pos, nonce, cs[i]); err != nil {
			return err
		}
		if cs[i].found != nil && stop != nil && stop(i) {
			// The save is refused whatever the rest would find.
			return nil
		}
	}
	return nil
}

// takeOne claims c from its first number, which was refused.
func (cl *claims) takeOne(ctx context.Context, pos, nonce int64, c *claim) error {
	for k := c.first; ; k++ {
		id := seq(c.base, k)
		if k > c.first {
			_, err := cl.coll.InsertOne(ctx, claimDoc{ID: id, Pos: pos, Nonce: nonce, Tenant: c.tenant, Epoch: c.epoch})
			if err == nil {
				return nil
			}
			if !mongo.IsDuplicateKeyError(err) {
				return err
			}
		}
		there, err := cl.read(ctx, id)
		if err != nil {
			return err
		}
		if there == nil {
			// Refused, yet not found: a read behind the insert.
			return fmt.Errorf("%w: claim %s refused as taken, yet not found", errStale, id)
		}
		if there.Nonce == nonce && there.Pos == pos {
			return nil // this writer's own, inserted by a retry
		}
		st, err := cl.judge(ctx, there, pos)
		if err != nil {
			return err
		}
		if st != live || c.stack {
			continue
		}
		if c.forgotten != nil {
			gone, err := c.forgotten(ctx, there)
			if err != nil {
				return err
			}
			if gone {
				continue
			}
		}
		c.found = there
		return nil
	}
}

// claimError classifies an error of claiming for op: nothing of the save
// was recorded, since its document was not inserted.
func claimError(op string, err error) error {
	var pe *persistence.Error
	if errors.As(err, &pe) {
		return err
	}
	return errorf(op+": claim", err)
}

// claimSave takes, for a save of events (and tracking) by the document
// with nonce at pos, the claims of its versions, its commit and its
// tracking record, and returns the error that forbids the save, if one
// stands in the way: a commit already recorded for every aggregate of the
// save is ErrAlreadyCommitted (for some of them only, ErrIntegrity); a
// version already taken or a tracking position already recorded is
// ErrIntegrity. A replacement takes the claims of its versions but is
// forbidden by none.
func (r *recorder) claimSave(ctx context.Context, op string, pos, nonce int64, events []persistence.StoredEvent, tracking *persistence.Tracking, replace bool) error {
	cl := r.log.claims
	pe, err := r.purgeEpoch(ctx, r.tenant, pos)
	if err != nil {
		return claimError(op, err)
	}
	des := map[uuid.UUID]int64{}
	for _, e := range events {
		if _, ok := des[e.OriginatorID]; ok {
			continue
		}
		de, err := cl.epoch(ctx, deletionKey(r.tenant, e.OriginatorID), pos)
		if err != nil {
			return claimError(op, err)
		}
		des[e.OriginatorID] = de
	}
	var cs, commits, versions []*claim
	var c uuid.UUID
	if len(events) > 0 && r.purpose == "" && !replace {
		c = events[0].CommitID
	}
	ids := sqlstore.Aggregates(events)
	if c != uuid.Nil {
		for _, id := range ids {
			commits = append(commits, &claim{base: commitKey(r.tenant, pe, c, id, des[id])})
		}
		cs = append(cs, commits...)
	}
	for _, e := range events {
		k := &claim{base: versionKey(r.tenant, pe, r.purpose, e.OriginatorID, des[e.OriginatorID], e.OriginatorVersion)}
		versions = append(versions, k)
		cs = append(cs, k)
	}
	var tr *claim
	if tracking != nil {
		tr = &claim{base: trackingKey(tracking.ApplicationName, tracking.NotificationID), tenant: r.tenant, epoch: pe,
			forgotten: func(ctx context.Context, there *claimDoc) (bool, error) {
				// A tracking record of a tenant counts unless the tenant
				// was purged after it.
				now, err := r.purgeEpoch(ctx, there.Tenant, pos)
				return now > there.Epoch, err
			}}
		cs = append(cs, tr)
	}
	// Commits come first: a commit recorded for every aggregate is
	// ErrAlreadyCommitted whatever the versions, so the versions need not
	// be resolved after the first one taken, once the commits are.
	var stop func(int) bool
	if !replace {
		stop = func(i int) bool { return i >= len(commits) }
	}
	if err := cl.take(ctx, pos, nonce, cs, stop); err != nil {
		if errors.Is(err, errStale) {
			return err
		}
		return claimError(op, err)
	}
	if replace {
		return nil
	}
	var committed []uuid.UUID
	for i, k := range commits {
		if k.found != nil {
			committed = append(committed, ids[i])
		}
	}
	if err := sqlstore.CommitError(op, events, committed); err != nil {
		return err
	}
	for i, k := range versions {
		if k.found != nil {
			return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity, Err: fmt.Errorf("aggregate %s already has version %d", events[i].OriginatorID, events[i].OriginatorVersion)}
		}
	}
	if tr != nil && tr.found != nil {
		return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity, Err: fmt.Errorf("notification %d of %s is already tracked", tracking.NotificationID, tracking.ApplicationName)}
	}
	return nil
}

// purgeEpoch returns the purge epoch of tenant at pos. The default tenant
// cannot be purged.
func (r *recorder) purgeEpoch(ctx context.Context, tenant string, pos int64) (int64, error) {
	if tenant == "" {
		return 0, nil
	}
	return r.log.claims.epoch(ctx, purgeKey(tenant), pos)
}
