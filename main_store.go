package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

func init() {
	extraCommands = append(extraCommands, command{"migrate-store", "migrate-store --from DATA_DIR --to postgres://…   move a company from SQLite to PostgreSQL, verified", cmdMigrateStore})
}

// cmdMigrateStore moves a company from its SQLite database to an empty PostgreSQL one:
// every table, in one transaction, from one snapshot of the SQLite database; then it reads
// both stores again and compares every table (rows and a digest of them), and says what
// it compared. --verify compares only. The blobs (DATA_DIR/blobs) are copied into the
// PostgreSQL blob store, each hash checked again on the way; the seal key stays a file.
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
	blobs, blobBytes, err := moveBlobs(ctx, *from, dst, *verifyOnly)
	if err != nil {
		return err
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
	fmt.Printf("verified: %d blobs (%d bytes) from %s are whole in PostgreSQL, each read back and its SHA-256 checked\n", blobs, blobBytes, filepath.Join(*from, "blobs"))
	fmt.Printf("the seal key (%s) stays a file: give every instance the same one (--seal-key, docs/operations.md)\n",
		filepath.Join(*from, schema.SealKeyFile))
	return nil
}

// moveBlobs copies every whole blob of the data folder into dst's blob store (unless
// verifyOnly), through the store's own upload, which checks each hash and type again, and
// then reads each back from dst and checks its hash. Unfinished uploads are left behind:
// their phones send them again.
func moveBlobs(ctx context.Context, dataDir string, dst *schema.DB, verifyOnly bool) (n int, size int64, err error) {
	dir := filepath.Join(dataDir, "blobs")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0, 0, nil
	} else if err != nil {
		return 0, 0, err
	}
	to, err := syncer.OpenBlobStoreIn(dst, "", math.MaxInt64)
	if err != nil {
		return 0, 0, err
	}
	defer to.Close()
	for _, e := range entries {
		if ctx.Err() != nil {
			return n, size, ctx.Err()
		}
		if !e.Type().IsRegular() || !syncer.ValidBlobSum(e.Name()) {
			continue
		}
		sum := e.Name()
		if !verifyOnly && !to.Has(sum) {
			f, err := os.Open(filepath.Join(dir, sum))
			if err != nil {
				return n, size, err
			}
			st, err := f.Stat()
			if err == nil {
				_, _, err = to.Append("", sum, 0, st.Size(), f)
			}
			f.Close()
			if err != nil {
				return n, size, fmt.Errorf("blob %s: %w", sum, err)
			}
		}
		if err := to.Verify(sum); err != nil {
			return n, size, fmt.Errorf("blob %s in PostgreSQL: %w", sum, err)
		}
		if info, err := e.Info(); err == nil {
			size += info.Size()
		}
		n++
	}
	return n, size, nil
}
