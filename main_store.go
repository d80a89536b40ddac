package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"fieldsync/schema"
)

func init() {
	extraCommands = append(extraCommands, command{"migrate-store", "migrate-store --from DATA_DIR --to postgres://…   move a company from SQLite to PostgreSQL, verified", cmdMigrateStore})
}

// cmdMigrateStore moves a company from its SQLite database to an empty PostgreSQL one:
// every table, in one transaction, from one snapshot of the SQLite database; then it reads
// both stores again and compares every table (rows and a digest of them), and says what
// it compared. --verify compares only. The seal key and the blobs stay in the data folder.
func cmdMigrateStore(args []string) error {
	const synopsis = "migrate-store --from DATA_DIR --to postgres://… [--verify]"
	fs := newFlags("migrate-store", synopsis)
	from := fs.String("from", "", "the data folder of the company, whose SQLite database is copied (stop its server first)")
	to := fs.String("to", "", "the PostgreSQL database to move it into: new and empty (its tables are created)")
	verifyOnly := fs.Bool("verify", false, "copy nothing: only compare the two stores, as after a copy")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: fieldsync %s", fs.Arg(0), synopsis)
	}
	if *from == "" || *to == "" {
		return fmt.Errorf("--from and --to are required: fieldsync %s", synopsis)
	}
	if !schema.IsPostgresURL(*to) {
		return fmt.Errorf("--to %q: give a postgres:// URL", schema.RedactURL(*to))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	src, err := schema.OpenExisting(ctx, *from)
	if err != nil {
		return err
	}
	defer src.Close()
	var dst *schema.DB
	if *verifyOnly {
		dst, err = schema.OpenExistingStore(ctx, "", *to)
	} else {
		dst, err = schema.OpenStore(ctx, "", *to)
	}
	if err != nil {
		return err
	}
	defer dst.Close()
	if !*verifyOnly {
		copied, err := schema.CopyStore(ctx, src, dst)
		if err != nil {
			return fmt.Errorf("nothing was copied: %w", err)
		}
		var total int64
		for _, c := range copied {
			total += c.TargetRows
		}
		fmt.Printf("copied %d rows of %d tables from %s into %s\n", total, len(copied), src.Path, schema.RedactURL(*to))
	}
	checks, err := schema.VerifyStore(ctx, src, dst)
	fmt.Printf("%-18s %10s %10s  %s\n", "TABLE", "SQLITE", "POSTGRES", "DIGEST OF EVERY ROW")
	for _, c := range checks {
		verdict := "equal"
		if !c.Equal() {
			verdict = "DIFFERS: " + c.TargetDigest[:16]
		}
		fmt.Printf("%-18s %10d %10d  %s %s\n", c.Table, c.SourceRows, c.TargetRows, c.SourceDigest[:16], verdict)
	}
	if err != nil {
		if *verifyOnly {
			return err
		}
		return fmt.Errorf("%w\nthe copy is committed but wrong: was a server still writing to %s? Drop the PostgreSQL database, create it empty, stop the server and run migrate-store again", err, *from)
	}
	fmt.Printf("verified: every table holds the same rows in both stores (count and digest of every row, each store read in one snapshot)\n")
	fmt.Printf("the seal key (%s) and the blobs (%s) stay in the data folder: start every instance with --data %s --db URL, or give each a copy of both\n",
		filepath.Join(*from, schema.SealKeyFile), filepath.Join(*from, "blobs"), *from)
	return nil
}
