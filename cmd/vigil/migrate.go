package main

import (
	"context"
	"fmt"
)

func migrate(ctx context.Context, configPath string, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("migrate takes no arguments")}
	}
	a, err := newApp(configPath)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.openStore(ctx); err != nil {
		return err
	}
	fmt.Println("database schema is up to date")
	return nil
}
