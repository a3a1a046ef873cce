// Command hookline runs hookline on a laptop (`hookline dev`) and talks to a
// running hookline: import a file, follow an upload, retry its failed pages,
// manage templates, or receive webhooks to see what arrives.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
)

const usage = `hookline: deliver imported spreadsheet records to webhooks, page by page.

Usage:
  hookline dev                          run ingest + worker in one process (embedded NATS), console at /console/
  hookline receiver [-addr A] [-fail N] [-fail-page P] [-v]
                                        print the webhooks it receives (a local test endpoint)
  hookline import -template CODE -file F [-auth-value V] [-extra E] [-sheet S] [-delimiter D] [-wait] [-q]
  hookline uploads list|get|attempts|failures|retry|watch ...
  hookline templates list|get|apply|delete|test|pause|resume ...
  hookline status UPLOAD_ID             the same as: hookline uploads get UPLOAD_ID
  hookline attempts UPLOAD_ID           the same as: hookline uploads attempts UPLOAD_ID
  hookline retry UPLOAD_ID              the same as: hookline uploads retry UPLOAD_ID
  hookline admin tenants|keys ...       tenants and API keys (the admin API)

Every command takes -h. Client commands read HOOKLINE_API (default
http://127.0.0.1:8080) and HOOKLINE_API_KEY (default the dev key of
"hookline dev"); admin commands read HOOKLINE_ADMIN_TOKEN (default the dev
admin token of "hookline dev").
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1], os.Args[2:])
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "hookline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, args []string) error {
	a := apiFromEnv()
	switch cmd {
	case "dev":
		return runDev(args)
	case "receiver":
		return runReceiver(args)
	case "import":
		return runImport(ctx, a, args)
	case "uploads":
		return runUploads(ctx, a, args)
	case "templates":
		return runTemplates(ctx, a, args)
	case "status":
		return runUploads(ctx, a, append([]string{"get"}, args...))
	case "attempts":
		return runUploads(ctx, a, append([]string{"attempts"}, args...))
	case "retry":
		return runUploads(ctx, a, append([]string{"retry"}, args...))
	case "admin":
		return runAdmin(args)
	case "help", "-h", "-help", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprintf(os.Stderr, "hookline: unknown command %q\n\n%s", cmd, usage)
	return errUsage
}
