package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"fieldsync/schema"
)

// cmdSettings lists the settings or sets one, offline, through the engine's write path: the
// same checks as PUT /api/v1/settings, and the change log records the command line as the
// author. It repairs a setting the server refused at start without the server running.
func cmdSettings(args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "set") {
		return errors.New("usage: fieldsync settings list --data DIR | fieldsync settings set --data DIR KEY VALUE")
	}
	sub, args := args[0], args[1:]
	fs := newFlags("settings "+sub, "settings list --data DIR | settings set --data DIR KEY VALUE")
	st := storeFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if sub == "set" && len(rest) != 2 {
		return errors.New("usage: fieldsync settings set --data DIR KEY VALUE (a list as JSON, [\"a\",\"b\"], or a,b)")
	}
	if sub == "list" && len(rest) != 0 {
		return fmt.Errorf("settings list takes no arguments (got %q)", strings.Join(rest, " "))
	}
	db, e, err := st.openEngine()
	if err != nil {
		return err
	}
	defer db.Close()
	defer e.Close()
	if sub == "list" {
		for _, err := range e.Settings().Invalid {
			fmt.Println("refused:", err)
		}
		for _, d := range e.Settings().All() {
			fmt.Printf("%-28s %s\n    %s\n", d.Str("key"), schema.MustJSON(d["value"]), d.Str("description"))
		}
		return nil
	}
	key, value := rest[0], rest[1]
	def, ok := schema.SettingDefByKey(key)
	if !ok {
		return fmt.Errorf("unknown setting %q (fieldsync settings list shows them)", key)
	}
	raw := json.RawMessage(value)
	switch def.Kind {
	case "string", "timezone", "lang":
		raw = schema.MustJSON(value) // text as typed
	case "list":
		if !strings.HasPrefix(strings.TrimSpace(value), "[") {
			items := []string{}
			for _, s := range strings.Split(value, ",") {
				if s = strings.TrimSpace(s); s != "" {
					items = append(items, s)
				}
			}
			raw = schema.MustJSON(items)
		}
	}
	if err := e.PutSettings(context.Background(), cliActor, map[string]json.RawMessage{key: raw}); err != nil {
		return err
	}
	for _, d := range e.Settings().All() {
		if d.Str("key") == key {
			fmt.Printf("%s set to %s\n", key, schema.MustJSON(d["value"]))
		}
	}
	return nil
}
