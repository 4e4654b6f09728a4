package messagedb

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// MaxGroupSize is the largest consumer group: get_category_messages binds
// the size as a smallint.
const MaxGroupSize = 32767

// GroupMember is one member of a consumer group that shares the reading
// of a category: it reads, with get_category_messages and its
// consumer_group_member and consumer_group_size arguments, the messages
// of the streams whose cardinal ID hashes to the member (|hash_64(cardinal
// ID)| mod size = member). The members of a group together read every
// message of the category's aggregates once, each aggregate's messages in
// order, by one member. Messages of streams without an ID (a bare
// category stream) go to no member.
//
// A GroupMember is a read-only persistence.ApplicationRecorder, so that
// application.NewLocalNotificationLog makes a notification log of it for a
// follower (system.WithRemoteLog): several follower processes then share
// one leader's category, each processing its part. Their process
// recorders keep each member's position apart (see [Config.GroupMember]),
// and the tracking records, unique across members, make each message
// processed exactly once.
type GroupMember struct {
	recorder
	member, size int
}

var _ persistence.ApplicationRecorder = (*GroupMember)(nil)

// GroupMember returns the member of a consumer group of size members that
// reads category (an application's category, such as the leader's) in this
// factory's database.
func (f *Factory) GroupMember(category string, member, size int) (*GroupMember, error) {
	if err := CheckCategory(category); err != nil {
		return nil, err
	}
	if size < 1 || size > MaxGroupSize || member < 0 || member >= size {
		return nil, fmt.Errorf("%w: consumer group member %d of size %d: want 0 <= member < size <= %d", persistence.ErrConfig, member, size, MaxGroupSize)
	}
	return &GroupMember{recorder: recorder{f: f, category: category, events: true}, member: member, size: size}, nil
}

// InsertEvents is refused: a consumer group member only reads.
func (g *GroupMember) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	return nil, &persistence.Error{Op: "insert events into consumer group member of " + g.category, Kind: persistence.ErrReadOnly,
		Err: errors.New("a consumer group member only reads its category")}
}

// SelectEvents reads one aggregate's stream of the category, as the
// category's application recorder does.
func (g *GroupMember) SelectEvents(ctx context.Context, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	r := Recorder{recorder: g.recorder}
	return r.SelectEvents(ctx, id, q)
}

// SelectNotifications returns the member's notifications of every
// tenant's aggregates (AllTenants is implied: the group splits aggregates,
// not tenants). Stop and Topics are applied to what Message DB returns: a
// select reads on until it has Limit notifications or the category ends.
func (g *GroupMember) SelectNotifications(ctx context.Context, q persistence.NotificationQuery) ([]persistence.Notification, error) {
	op := fmt.Sprintf("select notifications of consumer group member %d/%d of Message DB category %s", g.member, g.size, g.category)
	if err := g.begin(ctx, op); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf("limit %d is not positive", q.Limit)}
	}
	return g.readCategory(ctx, op, persistence.NotificationQuery{Start: q.Start, Limit: q.Limit, Stop: q.Stop, Topics: q.Topics, AllTenants: true},
		&g.member, &g.size, func(persistence.Notification) bool { return true })
}

// MaxNotificationID returns the highest global position of the member's
// messages.
func (g *GroupMember) MaxNotificationID(ctx context.Context) (int64, error) {
	op := fmt.Sprintf("select max notification ID of consumer group member %d/%d of Message DB category %s", g.member, g.size, g.category)
	if err := g.begin(ctx, op); err != nil {
		return 0, err
	}
	var n int64
	err := g.f.pool.QueryRow(ctx, `SELECT coalesce(max(m.global_position), 0) FROM message_store.messages m
WHERE message_store.category(m.stream_name) = $1 AND abs(message_store.hash_64(message_store.cardinal_id(m.stream_name))) % $3 = $2`,
		g.category, g.member, g.size).Scan(&n)
	if err != nil {
		return 0, errorf(op, err)
	}
	return n, nil
}
