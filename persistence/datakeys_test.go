package persistence_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/memory"
)

func TestDataKeysEncryptEraseAndRewrap(t *testing.T) {
	ctx := context.Background()
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	m1, _ := persistence.NewAESCipher(k1)
	store := memory.NewAggregateRecorder()
	keys := persistence.NewDataKeys(m1, store, persistence.KeyPerTenant)
	keys.SetCacheTTL(0)
	acme, globex := keys.Cipher("acme"), keys.Cipher("globex")
	a, err := acme.Encrypt([]byte("acme's secret"))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := globex.Encrypt([]byte("globex's secret"))
	if bytes.Contains(a, []byte("secret")) {
		t.Fatal("the ciphertext shows the plaintext")
	}
	// Either tenant's cipher decrypts with the key the state names.
	if p, err := globex.Decrypt(a); err != nil || string(p) != "acme's secret" {
		t.Fatalf("decrypt: %q %v", p, err)
	}
	// State encrypted by the master cipher alone still reads.
	old, _ := m1.Encrypt([]byte("before data keys"))
	if p, err := acme.Decrypt(old); err != nil || string(p) != "before data keys" {
		t.Fatalf("decrypt state of the master cipher: %q %v", p, err)
	}

	// Rotation: the keys are wrapped again with k2; a store read with k2
	// alone decrypts the same ciphertexts.
	rotating, _ := persistence.NewAESCipher(k2, k1)
	if n, err := persistence.NewDataKeys(rotating, store, persistence.KeyPerTenant).Rewrap(ctx); err != nil || n != 2 {
		t.Fatalf("rewrap: %d keys, %v", n, err)
	}
	m2, _ := persistence.NewAESCipher(k2)
	after := persistence.NewDataKeys(m2, store, persistence.KeyPerTenant)
	after.SetCacheTTL(0) // as another process whose cache expired
	if p, err := after.Cipher("x").Decrypt(a); err != nil || string(p) != "acme's secret" {
		t.Fatalf("decrypt with the new master key after rewrapping: %q %v", p, err)
	}

	if err := keys.Erase(ctx, "acme", uuid.Nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []*persistence.DataKeys{keys, after} {
		if _, err := k.Cipher("acme").Decrypt(a); !errors.Is(err, persistence.ErrErased) || !errors.Is(err, persistence.ErrData) {
			t.Fatalf("decrypt an erased tenant's state: %v, want ErrErased", err)
		}
	}
	if _, err := acme.Encrypt([]byte("more")); !errors.Is(err, persistence.ErrErased) {
		t.Fatalf("encrypt for an erased tenant: %v, want ErrErased", err)
	}
	if p, err := after.Cipher("globex").Decrypt(g); err != nil || string(p) != "globex's secret" {
		t.Fatalf("another tenant after the erasure: %q %v", p, err)
	}
	recs, _ := store.SelectEvents(ctx, keys.KeyID("acme", uuid.Nil), persistence.EventQuery{})
	if len(recs) != 1 || len(recs[0].State) != 0 {
		t.Fatalf("the erased key's record still holds %d bytes", len(recs[0].State))
	}

	perAggregate := persistence.NewDataKeys(m1, memory.NewAggregateRecorder(), persistence.KeyPerAggregate)
	c := perAggregate.Cipher("").(persistence.AggregateCipher)
	x, y := uuid.New(), uuid.New()
	cx, _ := c.EncryptAggregate(x, []byte("x"))
	cy, _ := c.EncryptAggregate(y, []byte("y"))
	if err := perAggregate.Erase(ctx, "", x); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decrypt(cx); !errors.Is(err, persistence.ErrErased) {
		t.Fatalf("an erased aggregate: %v", err)
	}
	if p, err := c.Decrypt(cy); err != nil || string(p) != "y" {
		t.Fatalf("another aggregate: %q %v", p, err)
	}
}
