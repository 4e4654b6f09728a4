package application

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// ForTenant returns the application as tenant id sees it: the same
// application (types, mapper, configuration, listeners), whose saves,
// loads, snapshots and log are those of the tenant only. A repository made
// from it loads the tenant's aggregates; no call made through it reads,
// overwrites or detects another tenant's. The view lives as long as the
// application; closing it does nothing. Tenant IDs are checked with
// persistence.CheckTenant.
func (a *Application) ForTenant(id string) (*Application, error) {
	base := a.base()
	if id == "" {
		return base, nil
	}
	base.shared.mu.Lock()
	defer base.shared.mu.Unlock()
	if t := base.shared.tenants[id]; t != nil {
		return t, nil
	}
	if base.shared.closed {
		return nil, fmt.Errorf("tenant %q of %s: %w: the application is closed", id, base.name, persistence.ErrInterface)
	}
	f, err := base.factory.Tenant(id)
	if err != nil {
		return nil, fmt.Errorf("tenant %q of %s: %w", id, base.name, err)
	}
	t := *base
	t.factory, t.tenant = f, id
	t.policy = base.policy.fresh()
	if base.dataKeys != nil {
		t.mapper = base.mapper.WithCipher(base.dataKeys.Cipher(id))
	}
	ctx := context.Background()
	if err := t.openRecorders(ctx, base.tracking); err != nil {
		return nil, fmt.Errorf("tenant %q of %s: %w", id, base.name, err)
	}
	t.events = persistence.NewEventStore(t.mapper, t.recorder)
	t.log = NewLocalNotificationLog(t.recorder, t.types)
	t.log.observe(&t)
	t.log.SetSectionSize(base.log.SectionSize())
	base.shared.tenants[id] = &t
	return &t, nil
}

// base returns the default tenant's application of a.
func (a *Application) base() *Application { return a.shared.base }

// Tenant returns the tenant of the application's view ("" for the default
// tenant).
func (a *Application) Tenant() string { return a.tenant }

// AllTenants returns the application's log across every tenant: the
// operator's view, in the one order of notification IDs, each notification
// with its tenant. Followers read their leaders through it.
func (a *Application) AllTenants() *LocalNotificationLog { return a.log.AcrossTenants() }

// ErrNotErasable means a store that cannot delete streams nor purge
// tenants (its factory is no persistence.Eraser).
var ErrNotErasable = errors.New("the store cannot delete data")

// DeleteAggregate deletes the aggregate id of the application's tenant:
// its events (their notifications leave the log), commits and snapshots,
// atomically, and reports whether it had events. Followers that had not
// read its notifications never will: check them first (the strata
// command's delete does, unless forced).
func (a *Application) DeleteAggregate(ctx context.Context, id uuid.UUID) (bool, error) {
	e, ok := a.factory.(persistence.Eraser)
	if !ok {
		return false, fmt.Errorf("delete %s: %w", id, ErrNotErasable)
	}
	had, err := e.DeleteAggregate(ctx, id)
	if err != nil {
		return false, fmt.Errorf("delete %s: %w", id, err)
	}
	a.policy.forget(id)
	return had, nil
}

// PurgeTenant deletes all the data of the application's tenant: events,
// commits, snapshots and tracking records, atomically. The default
// tenant cannot be purged.
func (a *Application) PurgeTenant(ctx context.Context) error {
	if a.tenant == "" {
		return fmt.Errorf("purge %s: %w: the default tenant cannot be purged; use the view of a tenant (ForTenant)", a.name, persistence.ErrProgramming)
	}
	e, ok := a.factory.(persistence.Eraser)
	if !ok {
		return fmt.Errorf("purge tenant %q of %s: %w", a.tenant, a.name, ErrNotErasable)
	}
	if err := e.PurgeTenant(ctx); err != nil {
		return fmt.Errorf("purge tenant %q of %s: %w", a.tenant, a.name, err)
	}
	a.policy.forgetAll()
	return nil
}
