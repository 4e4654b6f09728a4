package application

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// ErrNoDataKeys means an erasure or rotation of data keys asked of an
// application that does not encrypt with data keys (CIPHER_DATA_KEYS), or
// of the wrong scope.
var ErrNoDataKeys = errors.New("the application does not encrypt with data keys")

// openDataKeys sets up envelope encryption if CIPHER_DATA_KEYS asks for
// it: data keys per tenant or per aggregate, wrapped by the cipher of
// CIPHER_KEY, kept in the store's "keys" records.
func (a *Application) openDataKeys(ctx context.Context) error {
	v, name, _ := a.env.Lookup("CIPHER_DATA_KEYS")
	var scope persistence.KeyScope
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "":
		return nil
	case "tenant":
		scope = persistence.KeyPerTenant
	case "aggregate":
		scope = persistence.KeyPerAggregate
	default:
		return fmt.Errorf("%w: %s=%q: want tenant or aggregate", persistence.ErrConfig, name, v)
	}
	master := a.mapper.Cipher()
	if master == nil {
		return fmt.Errorf("%w: %s=%q needs CIPHER_KEY, the master key that wraps the data keys", persistence.ErrConfig, name, v)
	}
	rec, err := a.factory.AggregateRecorder(ctx, "keys")
	if err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	a.dataKeys = persistence.NewDataKeys(master, rec, scope)
	a.mapper = a.mapper.WithCipher(a.dataKeys.Cipher(a.tenant))
	return nil
}

// DataKeys returns the application's data keys, or nil if it does not
// encrypt with data keys.
func (a *Application) DataKeys() *persistence.DataKeys { return a.dataKeys }

// EraseTenant erases the data key of the application's tenant
// (CIPHER_DATA_KEYS=tenant): every event and snapshot of the tenant stays
// in the store, in the log's order, and can never be decrypted again;
// reading one fails with an error wrapping persistence.ErrErased, and
// followers go past them. Nothing more can be saved for the tenant.
func (a *Application) EraseTenant(ctx context.Context) error {
	if a.dataKeys == nil || a.dataKeys.Scope() != persistence.KeyPerTenant {
		return fmt.Errorf("erase tenant %q of %s: %w per tenant (CIPHER_DATA_KEYS=tenant)", a.tenant, a.name, ErrNoDataKeys)
	}
	return a.dataKeys.Erase(ctx, a.tenant, uuid.Nil)
}

// EraseAggregate erases the data key of the aggregate id of the
// application's tenant (CIPHER_DATA_KEYS=aggregate), as EraseTenant does
// for a tenant.
func (a *Application) EraseAggregate(ctx context.Context, id uuid.UUID) error {
	if a.dataKeys == nil || a.dataKeys.Scope() != persistence.KeyPerAggregate {
		return fmt.Errorf("erase %s of %s: %w per aggregate (CIPHER_DATA_KEYS=aggregate)", id, a.name, ErrNoDataKeys)
	}
	a.policy.forget(id)
	return a.dataKeys.Erase(ctx, a.tenant, id)
}

// RotateDataKeys wraps every data key again with the current master key
// (CIPHER_KEY), so that the previous master keys (CIPHER_PREVIOUS_KEYS)
// are no longer needed; events are not rewritten. It returns how many keys
// it wrapped again.
func (a *Application) RotateDataKeys(ctx context.Context) (int, error) {
	if a.dataKeys == nil {
		return 0, fmt.Errorf("rotate the data keys of %s: %w", a.name, ErrNoDataKeys)
	}
	return a.dataKeys.Rewrap(ctx)
}
