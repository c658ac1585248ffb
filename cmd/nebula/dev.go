package main

import (
	"context"
	"io"
	"log/slog"
)

func runDev(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	return notYet("dev", 2)(ctx, args, stdout, logger)
}

func runManager(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	return notYet("manager", 2)(ctx, args, stdout, logger)
}
