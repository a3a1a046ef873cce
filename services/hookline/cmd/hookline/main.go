// Command hookline runs hookline on a laptop (`hookline dev`) and talks to a
// running hookline: import a file, follow an upload, retry its failed pages,
// or receive webhooks to see what arrives.
package main

import (
	"fmt"
	"os"
)

const usage = `hookline: deliver imported spreadsheet records to webhooks, page by page.

Usage:
  hookline dev                         run ingest + worker in one process (embedded NATS)
  hookline receiver [-addr A] [-fail N] print the webhooks it receives (a local test endpoint)
  hookline import -template CODE -file F [-auth-value V] [-extra E] [-sheet S] [-delimiter D] [-wait]
  hookline status UPLOAD_ID            show an upload's status
  hookline attempts UPLOAD_ID          show an upload's delivery attempts
  hookline retry UPLOAD_ID             send an upload's failed pages again
  hookline admin tenants create --id ID [--name N] [--max-records N] [--max-concurrent-uploads N] [--imports-per-minute N]
  hookline admin tenants list          list tenants (also: tenants get --id ID)
  hookline admin keys create --tenant ID   make an API key (shown once)
  hookline admin keys list --tenant ID     list a tenant's keys (no key material)
  hookline admin keys revoke --tenant ID --key-id K

Client commands read HOOKLINE_API (default http://127.0.0.1:8080) and
HOOKLINE_API_KEY (default the dev key of "hookline dev"); admin commands read
HOOKLINE_ADMIN_TOKEN (default the dev admin token of "hookline dev").
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "dev":
		err = runDev(args)
	case "receiver":
		err = runReceiver(args)
	case "import":
		err = runImport(args)
	case "status":
		err = runGet(args, "")
	case "attempts":
		err = runGet(args, "/attempts")
	case "retry":
		err = runRetry(args)
	case "admin":
		err = runAdmin(args)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "hookline: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hookline:", err)
		os.Exit(1)
	}
}
