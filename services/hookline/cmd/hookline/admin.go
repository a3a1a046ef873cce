package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// DevAdminToken is the admin token `hookline dev` sets when HOOKLINE_ADMIN_TOKEN is not set.
const DevAdminToken = "hookline-dev-admin-token-change-me-0000" // #nosec G101 -- the documented token of the local dev mode only

const adminUsage = `Usage:
  hookline admin tenants create --id ID [--name NAME] [--max-records N] [--max-concurrent-uploads N] [--imports-per-minute N] [--delivery-share N]
  hookline admin tenants update --id ID [--max-records N] [--max-concurrent-uploads N] [--imports-per-minute N] [--delivery-share N] [--default QUOTA,...]
  hookline admin tenants list
  hookline admin tenants get --id ID
  hookline admin keys create --tenant ID      (prints the key: it is shown this once)
  hookline admin keys list --tenant ID
  hookline admin keys revoke --tenant ID --key-id KEY_ID

Quotas left out take the server's defaults (HOOKLINE_QUOTA_*); 0 means no limit.
"tenants update" changes only the quotas it is given; --default names quotas
(maxRecords, maxConcurrentUploads, importsPerMinute, deliveryShare) that go
back to the server's defaults.
Reads HOOKLINE_API (default http://127.0.0.1:8080) and HOOKLINE_ADMIN_TOKEN
(default the dev token of "hookline dev").
`

func adminToken() string { return envOr("HOOKLINE_ADMIN_TOKEN", DevAdminToken) }

func runAdmin(args []string) error {
	if len(args) < 2 {
		fmt.Fprint(os.Stderr, adminUsage)
		return errors.New("admin needs a subject and a command, e.g. admin tenants list")
	}
	ctx := context.Background()
	subject, cmd, rest := args[0], args[1], args[2:]
	switch subject + " " + cmd {
	case "tenants create":
		return adminCreateTenant(ctx, rest)
	case "tenants update":
		return adminUpdateTenant(ctx, rest)
	case "tenants list":
		return adminPrint(ctx, http.MethodGet, "/v1/admin/tenants", nil)
	case "tenants get":
		fs, id := adminFlags("tenants get", "id", "tenant id (required)")
		if err := parseRequired(fs, rest, id, "--id"); err != nil {
			return err
		}
		return adminPrint(ctx, http.MethodGet, "/v1/admin/tenants/"+url.PathEscape(*id), nil)
	case "keys create":
		fs, tenant := adminFlags("keys create", "tenant", "tenant id (required)")
		if err := parseRequired(fs, rest, tenant, "--tenant"); err != nil {
			return err
		}
		data, err := adminCall(ctx, http.MethodPost, "/v1/admin/tenants/"+url.PathEscape(*tenant)+"/keys", nil)
		if err != nil {
			return err
		}
		printJSON(data)
		fmt.Fprintln(os.Stderr, "Keep the key now: hookline stores only its hash and will not show it again.")
		return nil
	case "keys list":
		fs, tenant := adminFlags("keys list", "tenant", "tenant id (required)")
		if err := parseRequired(fs, rest, tenant, "--tenant"); err != nil {
			return err
		}
		return adminPrint(ctx, http.MethodGet, "/v1/admin/tenants/"+url.PathEscape(*tenant)+"/keys", nil)
	case "keys revoke":
		fs, tenant := adminFlags("keys revoke", "tenant", "tenant id (required)")
		keyID := fs.String("key-id", "", "id of the key to revoke (required)")
		if err := parseRequired(fs, rest, tenant, "--tenant"); err != nil {
			return err
		}
		if *keyID == "" {
			return errors.New("keys revoke needs --key-id")
		}
		if _, err := adminCall(ctx, http.MethodDelete, "/v1/admin/tenants/"+url.PathEscape(*tenant)+"/keys/"+url.PathEscape(*keyID), nil); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "key %s of tenant %s revoked\n", *keyID, *tenant)
		return nil
	}
	fmt.Fprint(os.Stderr, adminUsage)
	return fmt.Errorf("unknown admin command %q", subject+" "+cmd)
}

func adminFlags(name, flagName, help string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("admin "+name, flag.ContinueOnError)
	return fs, fs.String(flagName, "", help)
}

func parseRequired(fs *flag.FlagSet, args []string, v *string, name string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *v == "" {
		return fmt.Errorf("%s needs %s", strings.TrimPrefix(fs.Name(), "admin "), name)
	}
	return nil
}

// optionalInt is an int flag that knows whether it was given.
type optionalInt struct{ v *int }

func (o *optionalInt) String() string {
	if o.v == nil {
		return ""
	}
	return strconv.Itoa(*o.v)
}

func (o *optionalInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return errors.New("must be a whole number, 0 or more (0: no limit)")
	}
	o.v = &n
	return nil
}

func adminCreateTenant(ctx context.Context, args []string) error {
	fs, id := adminFlags("tenants create", "id", "tenant id: 1 to 64 letters, digits, '-' or '_' (required)")
	name := fs.String("name", "", "display name (default the id)")
	var maxRecords, maxConcurrent, perMinute, share optionalInt
	fs.Var(&maxRecords, "max-records", "records per import (0: no limit; default the server's)")
	fs.Var(&maxConcurrent, "max-concurrent-uploads", "uploads delivering at once (0: no limit; default the server's)")
	fs.Var(&perMinute, "imports-per-minute", "imports accepted per minute (0: no limit; default the server's)")
	fs.Var(&share, "delivery-share", "weight when workers share delivery slots between tenants, 1 to 100 (default 1)")
	if err := parseRequired(fs, args, id, "--id"); err != nil {
		return err
	}
	quotas := map[string]int{}
	for k, o := range map[string]optionalInt{"maxRecords": maxRecords, "maxConcurrentUploads": maxConcurrent, "importsPerMinute": perMinute, "deliveryShare": share} {
		if o.v != nil {
			quotas[k] = *o.v
		}
	}
	return adminPrint(ctx, http.MethodPost, "/v1/admin/tenants", map[string]any{"id": *id, "name": *name, "quotas": quotas})
}

// quotaNames are the quotas of a tenant, as the API names them.
var quotaNames = []string{"maxRecords", "maxConcurrentUploads", "importsPerMinute", "deliveryShare"}

func adminUpdateTenant(ctx context.Context, args []string) error {
	fs, id := adminFlags("tenants update", "id", "tenant id (required)")
	var maxRecords, maxConcurrent, perMinute, share optionalInt
	fs.Var(&maxRecords, "max-records", "records per import (0: no limit)")
	fs.Var(&maxConcurrent, "max-concurrent-uploads", "uploads delivering at once (0: no limit)")
	fs.Var(&perMinute, "imports-per-minute", "imports accepted per minute (0: no limit)")
	fs.Var(&share, "delivery-share", "weight when workers share delivery slots between tenants, 1 to 100; new imports only")
	defaults := fs.String("default", "", "comma-separated quotas to return to the server's defaults, e.g. maxRecords,deliveryShare")
	if err := parseRequired(fs, args, id, "--id"); err != nil {
		return err
	}
	quotas := map[string]any{}
	for k, o := range map[string]optionalInt{"maxRecords": maxRecords, "maxConcurrentUploads": maxConcurrent, "importsPerMinute": perMinute, "deliveryShare": share} {
		if o.v != nil {
			quotas[k] = *o.v
		}
	}
	for name := range strings.SplitSeq(*defaults, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if !slices.Contains(quotaNames, name) {
			return fmt.Errorf("--default: unknown quota %q (one of %s)", name, strings.Join(quotaNames, ", "))
		}
		if _, ok := quotas[name]; ok {
			return fmt.Errorf("--default names %s, which is also given a value", name)
		}
		quotas[name] = nil
	}
	if len(quotas) == 0 {
		return errors.New("tenants update needs a quota to change: --max-records, --max-concurrent-uploads, --imports-per-minute, --delivery-share or --default")
	}
	return adminPrint(ctx, http.MethodPatch, "/v1/admin/tenants/"+url.PathEscape(*id), map[string]any{"quotas": quotas})
}

func adminPrint(ctx context.Context, method, path string, body any) error {
	data, err := adminCall(ctx, method, path, body)
	if err != nil {
		return err
	}
	printJSON(data)
	return nil
}

// adminCall makes an admin API request with HOOKLINE_ADMIN_TOKEN.
func adminCall(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	ctype := ""
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd, ctype = bytes.NewReader(data), "application/json"
	}
	return callWith(ctx, adminToken(), method, path, ctype, rd)
}
