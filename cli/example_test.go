package cli_test

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/cli"
	"github.com/strata-go/strata/domain"
	_ "github.com/strata-go/strata/persistence/sqlite" // --db: a SQLite file
	"github.com/strata-go/strata/system"
)

// A user's domain: carts to which items are added.

type Cart struct {
	domain.Aggregate
	Items []string `json:"items"`
}

type CartCreated struct{}

func (CartCreated) ApplyTo(*Cart) {}

type ItemAdded struct {
	Item string `json:"item"`
}

func (e ItemAdded) ApplyTo(c *Cart) { c.Items = append(c.Items, e.Item) }

var shopTypes = domain.Types(
	domain.AggregateType[Cart](domain.Named("Cart"), domain.CreatedBy(CartCreated{})),
	domain.EventType[CartCreated](domain.Named("Cart.Created")),
	domain.EventType[ItemAdded](domain.Named("Cart.ItemAdded")),
)

type Shop struct{ *application.Application }

func NewShop(ctx context.Context, opts ...application.Option) (*Shop, error) {
	app, err := application.New(ctx, "Shop", append([]application.Option{application.WithTypes(shopTypes)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return &Shop{app}, nil
}

// shop is the domain as the user's main registers it.
var shop = cli.Domain{
	Name:         "shop",
	Description:  "carts and their items",
	Applications: []system.Def{system.Define("Shop", shopTypes, NewShop)},
	// A read model the domain registers: not an event-sourced aggregate.
	PlainTypes: []cli.PlainType{"CartSummary"},
	Demo: func(ctx context.Context, apps system.Runner, w io.Writer) error {
		s, err := system.Get[*Shop](apps, "Shop")
		if err != nil {
			return err
		}
		for _, items := range [][]string{{"apple", "pear"}, {"fig"}} {
			cart, err := domain.New[Cart](domain.NewID(), CartCreated{})
			if err != nil {
				return err
			}
			for _, item := range items {
				if err := domain.Trigger(cart, ItemAdded{Item: item}); err != nil {
					return err
				}
			}
			if _, err := s.Save(ctx, cart); err != nil {
				return err
			}
		}
		fmt.Fprintln(w, "Filled 2 carts.")
		return nil
	},
}

// A user's main registers the user's domains and runs the command:
//
//	func main() { cli.Main(shop) }
//
// Here the command runs three times, as "shop demo" and so on would from
// a shell, on a SQLite file in a temporary directory.
func Example() {
	dir, err := os.MkdirTemp("", "shop")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		panic(err)
	}
	defer os.Chdir(wd)

	for _, args := range [][]string{
		{"demo", "--db", "shop.db"},
		{"snapshot", "create", "--aggregate", "Cart", "--db", "shop.db"},
		{"snapshot", "create", "--aggregate", "CartSummary", "--db", "shop.db"},
	} {
		cmd := cli.New(shop) // a command runs once
		cmd.Use = "shop"
		cmd.SetErr(os.Stdout)
		code := cli.Run(context.Background(), cmd, args)
		fmt.Println("exit status", code)
	}
	// Output:
	// Filled 2 carts.
	// Stored in SQLite database shop.db.
	// Next: shop log, shop events --aggregate Cart --identifier ID, shop snapshot create
	// exit status 0
	// Created 2 snapshot(s) for Cart.
	// exit status 0
	// Error: CartSummary is not an event-sourced aggregate (it is a plain type of domain shop)
	// exit status 1
}
