package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/persistence"
)

// record is an event as the commands print it.
type record struct {
	ID                int64               `json:"id,omitempty"` // notification ID, in logs
	Tenant            string              `json:"tenant,omitempty"`
	OriginatorID      uuid.UUID           `json:"originator_id"`
	OriginatorVersion int64               `json:"originator_version"`
	Timestamp         time.Time           `json:"timestamp"`
	Topic             string              `json:"topic"`
	Data              json.RawMessage     `json:"data"`
	CommitID          uuid.UUID           `json:"commit_id"`
	Headers           persistence.Headers `json:"headers,omitempty"`
	// Erased is true for an event whose data key was erased: it has no
	// data, and no time.
	Erased bool `json:"erased,omitempty"`
}

// decode decodes a stored event with the application's mapper (which
// decrypts and decompresses as configured) into a record whose data is
// the event's fields as JSON.
func decode(app *application.Application, id int64, tenant string, s persistence.StoredEvent) (record, error) {
	e, err := app.Mapper().ToEvent(s)
	if errors.Is(err, persistence.ErrErased) {
		return record{ID: id, Tenant: tenant, OriginatorID: s.OriginatorID, OriginatorVersion: s.OriginatorVersion,
			Topic: s.Topic, Data: json.RawMessage("null"), CommitID: s.CommitID, Headers: s.Headers, Erased: true}, nil
	}
	if err != nil {
		return record{}, err
	}
	data, err := app.Mapper().Transcoder().Marshal(e.Data)
	if err != nil {
		return record{}, fmt.Errorf("encode event %s version %d (%s) as JSON: %w", s.OriginatorID, s.OriginatorVersion, s.Topic, err)
	}
	return record{ID: id, Tenant: tenant, OriginatorID: s.OriginatorID, OriginatorVersion: s.OriginatorVersion,
		Timestamp: e.Timestamp.UTC(), Topic: s.Topic, Data: data, CommitID: s.CommitID, Headers: s.Headers}, nil
}

// printer writes records as text or as JSON lines.
type printer struct {
	w    io.Writer
	json *json.Encoder
	log  bool // text lines of a log start with the notification ID and the originator
}

func newPrinter(w io.Writer, format string, log bool) (*printer, error) {
	p := &printer{w: w, log: log}
	switch format {
	case "text":
	case "json":
		p.json = json.NewEncoder(w)
		p.json.SetEscapeHTML(false)
	default:
		return nil, usageError{fmt.Errorf("--format %q: want text or json", format)}
	}
	return p, nil
}

func (p *printer) print(r record) error {
	if p.json != nil {
		return p.json.Encode(r)
	}
	ts, data := r.Timestamp.Format(time.RFC3339Nano), string(r.Data)
	if r.Erased {
		ts, data = "-", "<erased>"
	}
	var line string
	if p.log {
		line = fmt.Sprintf("%d %s %s v%d %s %s", r.ID, ts, r.OriginatorID, r.OriginatorVersion, r.Topic, data)
	} else {
		line = fmt.Sprintf("v%d %s %s %s", r.OriginatorVersion, ts, r.Topic, data)
	}
	if r.Tenant != "" {
		line += " tenant=" + strconv.Quote(r.Tenant)
	}
	if len(r.Headers) > 0 {
		h, _ := json.Marshal(r.Headers)
		line += " headers=" + string(h)
	}
	_, err := fmt.Fprintln(p.w, line)
	return err
}

// eventsPage is how many events of one aggregate the events command reads
// at a time.
const eventsPage = 500

// events calls f with each event of the aggregate, in order of version, a
// page at a time.
func (a *Admin) events(ctx context.Context, aggregate string, id uuid.UUID, f func(record) error) error {
	_, app, err := a.instance(ctx, aggregate, id)
	if err != nil {
		return err
	}
	var after *int64
	for {
		page, err := app.Recorder().SelectEvents(ctx, id, persistence.EventQuery{Gt: after, Limit: eventsPage})
		if err != nil {
			return fmt.Errorf("events of %s %s: %w", aggregate, id, err)
		}
		for _, s := range page {
			r, err := decode(app, 0, app.Tenant(), s)
			if err != nil {
				return err
			}
			if err := f(r); err != nil {
				return err
			}
			v := s.OriginatorVersion
			after = &v
		}
		if len(page) < eventsPage {
			return nil
		}
	}
}

func (r *root) eventsCommand() *cobra.Command {
	var aggregate, identifier, format string
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print the events of one aggregate, decoded",
		Long: `Print the events of one aggregate, oldest first, decoded with its
application's types (and cipher key and compressor, as the environment
configures them).

As text, one line per event: the version, the time (UTC), the topic and the
event's fields as JSON, then the tenant (unless the default) and the
commit's headers (as JSON, if it has any):

  v2 2026-03-01T10:00:00.000001Z World.SomethingHappened {"what":"dinosaurs"} headers={"user":"ada"}

As JSON, one object per line with originator_id, originator_version,
timestamp, topic, data, commit_id and headers (if any).`,
		Example: r.examples("events --aggregate " + r.aggregate + " --identifier " + sampleID + " --format json"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := newPrinter(cmd.OutOrStdout(), format, false)
			if err != nil {
				return err
			}
			admin, err := r.load(reading)
			if err != nil {
				return err
			}
			defer admin.Close()
			if _, err := admin.aggregate(aggregate); err != nil {
				return err
			}
			id, err := uuid.Parse(identifier)
			if err != nil {
				return fmt.Errorf("%s with identifier %s %w (identifiers are UUIDs)", aggregate, identifier, ErrInstanceNotFound)
			}
			return admin.events(cmd.Context(), aggregate, id, p.print)
		},
	}
	cmd.Flags().StringVar(&aggregate, "aggregate", "", "the aggregate type, such as World (required)")
	cmd.Flags().StringVar(&identifier, "identifier", "", identifierFlag+" (required)")
	cmd.Flags().StringVar(&format, "format", "text", "the output format: text or json")
	_ = cmd.MarkFlagRequired("aggregate")
	_ = cmd.MarkFlagRequired("identifier")
	return cmd
}
