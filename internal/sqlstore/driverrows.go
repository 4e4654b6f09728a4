package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	"github.com/strata-go/strata/persistence"
)

// driverNotifications runs q, a select of NotificationColumns, on a reader
// connection through the driver's rows, and decodes every row as
// SelectNotifications does (see Dialect.DriverRows).
func (r *Recorder) driverNotifications(ctx context.Context, q Query, limit int) ([]persistence.Notification, error) {
	args := make([]driver.NamedValue, len(q.Args))
	for i, a := range q.Args {
		v, err := driver.DefaultParameterConverter.ConvertValue(a)
		if err != nil {
			return nil, fmt.Errorf("argument %d of the select: %w", i+1, err)
		}
		args[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	conn, err := r.db.Reader.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	out := make([]persistence.Notification, 0, min(limit, 1024))
	err = conn.Raw(func(dc any) error {
		qc, ok := dc.(driver.QueryerContext)
		if !ok {
			return errors.New("the driver's connection runs no queries of its own (driver.QueryerContext)")
		}
		rows, err := qc.QueryContext(ctx, q.SQL, args)
		if err != nil {
			return err
		}
		defer rows.Close()
		if n := len(rows.Columns()); n != 8 {
			return fmt.Errorf("the select of notifications returned %d columns, want 8", n)
		}
		dest := make([]driver.Value, 8)
		var page Page
		for {
			if err := rows.Next(dest); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
			out = append(out, persistence.Notification{})
			if err := decodeDriverRow(dest, &out[len(out)-1], &page); err != nil {
				return fmt.Errorf("notification after %d rows: %w", len(out)-1, err)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// decodeDriverRow decodes one row of NotificationColumns from the
// driver's values. The driver may reuse its buffers for the next row, so
// bytes are copied through page. A damaged ID or headers do not fail the
// row (see setRowBytes).
func decodeDriverRow(v []driver.Value, n *persistence.Notification, page *Page) error {
	var ok bool
	if n.ID, ok = v[0].(int64); !ok {
		return fmt.Errorf("%w: notification_id is %T, not an integer", persistence.ErrData, v[0])
	}
	if n.OriginatorVersion, ok = v[3].(int64); !ok {
		return fmt.Errorf("%w: originator_version of notification %d is %T, not an integer", persistence.ErrData, n.ID, v[3])
	}
	n.Tenant = driverText(v[1], page.Tenant)
	n.Topic = driverText(v[4], page.Topic)
	setRowBytes(n, page, driverBytes(v[2]), driverBytes(v[5]), driverBytes(v[6]), driverBytes(v[7]))
	return nil
}

// driverText returns a text value as a string: the driver's own, or its
// bytes made one by text (a Page's Tenant or Topic).
func driverText(v driver.Value, text func([]byte) string) string {
	if s, ok := v.(string); ok {
		return s
	}
	return text(driverBytes(v))
}

// driverBytes returns the bytes of a text or blob value, nil for NULL or
// any other type.
func driverBytes(v driver.Value) []byte {
	switch v := v.(type) {
	case []byte:
		return v
	case string:
		return []byte(v)
	}
	return nil
}
