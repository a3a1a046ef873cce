package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// subcommand is one command of a group (hookline uploads get, …): setup
// declares its flags and returns what runs with the positional arguments.
type subcommand struct {
	name, args, help string
	setup            func(fs *flag.FlagSet) func(ctx context.Context, a *api, args []string) error
}

// errUsage: the usage was printed; the command line was wrong.
var errUsage = errors.New("see the usage above")

func runGroup(ctx context.Context, a *api, group, help string, cmds []subcommand, args []string) error {
	usage := func() {
		fmt.Fprintf(a.log, "Usage: hookline %s COMMAND [flags]\n\n%s\n\nCommands:\n", group, help)
		w := tabwriter.NewWriter(a.log, 0, 4, 2, ' ', 0)
		for _, c := range cmds {
			fmt.Fprintf(w, "  %s %s\t%s\n", c.name, c.args, firstLine(c.help))
		}
		_ = w.Flush()
		fmt.Fprintf(a.log, "\nRun \"hookline %s COMMAND -h\" for a command's flags.\n", group)
	}
	if len(args) == 0 {
		usage()
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage()
		return flag.ErrHelp
	}
	for _, c := range cmds {
		if c.name == args[0] {
			return c.exec(ctx, a, group, args[1:])
		}
	}
	usage()
	return fmt.Errorf("unknown command %q of hookline %s", args[0], group)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func (c subcommand) exec(ctx context.Context, a *api, group string, args []string) error {
	fs := flag.NewFlagSet("hookline "+group+" "+c.name, flag.ContinueOnError)
	fs.SetOutput(a.log)
	run := c.setup(fs)
	fs.Usage = func() {
		fmt.Fprintf(a.log, "Usage: hookline %s %s %s\n\n%s\n", group, c.name, c.args, c.help)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(a.log, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != len(strings.Fields(c.args)) {
		fs.Usage()
		if c.args == "" {
			return fmt.Errorf("hookline %s %s takes no arguments", group, c.name)
		}
		return fmt.Errorf("hookline %s %s takes %s", group, c.name, c.args)
	}
	return run(ctx, a, pos)
}

// parseInterleaved parses flags that come before, between or after the
// positional arguments (hookline templates apply CODE -f FILE).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func noFlags(run func(ctx context.Context, a *api, args []string) error) func(*flag.FlagSet) func(context.Context, *api, []string) error {
	return func(*flag.FlagSet) func(context.Context, *api, []string) error { return run }
}

// table writes rows under headings, in aligned columns.
func table(out io.Writer, headings string, rows [][]string) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, headings)
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	_ = w.Flush()
}

// oneLine shortens s to n characters on one line, for a table cell.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	if s == "" {
		return "-"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func orDash(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func decodeAll[T any](items []json.RawMessage) ([]T, error) {
	out := make([]T, len(items))
	for i, it := range items {
		if err := json.Unmarshal(it, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// printList prints items as {"field": [...]} JSON, or as a table.
func printList[T any](a *api, field string, items []json.RawMessage, asJSON bool, headings string, row func(T) []string) error {
	if asJSON {
		data, err := json.Marshal(map[string]any{field: items})
		if err != nil {
			return err
		}
		a.printJSON(data)
		return nil
	}
	vs, err := decodeAll[T](items)
	if err != nil {
		return err
	}
	rows := make([][]string, len(vs))
	for i, v := range vs {
		rows[i] = row(v)
	}
	table(a.out, headings, rows)
	if len(rows) == 0 {
		fmt.Fprintf(a.log, "no %s\n", field)
	}
	return nil
}

type uploadRow struct {
	UploadID       string    `json:"uploadId"`
	Template       string    `json:"template"`
	Status         string    `json:"status"`
	TotalRecords   int       `json:"totalRecords"`
	TotalPages     int       `json:"totalPages"`
	DeliveredPages int       `json:"deliveredPages"`
	FailedPages    int       `json:"failedPages"`
	CreatedAt      time.Time `json:"createdAt"`
}

type attemptRow struct {
	Page         int       `json:"page"`
	Attempt      int       `json:"attempt"`
	Outcome      string    `json:"outcome"`
	StatusCode   int       `json:"statusCode"`
	Error        string    `json:"error"`
	ResponseBody string    `json:"responseBody"`
	DurationMs   int64     `json:"durationMs"`
	At           time.Time `json:"at"`
}

type failureRow struct {
	Page       int       `json:"page"`
	Attempts   int       `json:"attempts"`
	StatusCode int       `json:"statusCode"`
	Error      string    `json:"error"`
	At         time.Time `json:"at"`
}

type templateRow struct {
	Code        string `json:"code"`
	Name        string `json:"name"`
	State       string `json:"state"`
	Destination struct {
		Webhook struct {
			URL string `json:"url"`
		} `json:"webhook"`
	} `json:"destination"`
}

func jsonFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("json", false, "print the API's JSON instead of a table")
}

var uploadCommands = []subcommand{
	{"list", "", "List recent uploads, newest first.", func(fs *flag.FlagSet) func(context.Context, *api, []string) error {
		tmpl := fs.String("template", "", "only the uploads of this template")
		status := fs.String("status", "", "only uploads delivering, completed or failed")
		limit := fs.Int("limit", 50, "at most this many (1 to 1000)")
		asJSON := jsonFlag(fs)
		return func(ctx context.Context, a *api, _ []string) error {
			q := url.Values{"limit": {fmt.Sprint(*limit)}}
			for k, v := range map[string]string{"template": *tmpl, "status": *status} {
				if v != "" {
					q.Set(k, v)
				}
			}
			data, err := a.call(ctx, http.MethodGet, "/v1/uploads?"+q.Encode(), nil)
			if err != nil {
				return err
			}
			var l struct{ Uploads []json.RawMessage }
			if err := json.Unmarshal(data, &l); err != nil {
				return err
			}
			return printList(a, "uploads", l.Uploads, *asJSON, "UPLOAD\tTEMPLATE\tSTATUS\tDELIVERED\tFAILED\tRECORDS\tCREATED",
				func(u uploadRow) []string {
					return []string{u.UploadID, u.Template, u.Status, fmt.Sprintf("%d/%d", u.DeliveredPages, u.TotalPages),
						orDash(u.FailedPages), fmt.Sprint(u.TotalRecords), when(u.CreatedAt)}
				})
		}
	}},
	{"get", "UPLOAD_ID", "Show an upload's status and counters.", noFlags(func(ctx context.Context, a *api, args []string) error {
		data, err := a.call(ctx, http.MethodGet, uploadPath(args[0]), nil)
		if err == nil {
			a.printJSON(data)
		}
		return err
	})},
	{"attempts", "UPLOAD_ID", "List every delivery attempt of an upload.", func(fs *flag.FlagSet) func(context.Context, *api, []string) error {
		asJSON := jsonFlag(fs)
		return func(ctx context.Context, a *api, args []string) error {
			items, err := a.listAll(ctx, uploadPath(args[0], "/attempts"), "attempts")
			if err != nil {
				return err
			}
			return printList(a, "attempts", items, *asJSON, "PAGE\tATTEMPT\tOUTCOME\tSTATUS\tLATENCY\tERROR\tRESPONSE\tAT",
				func(t attemptRow) []string {
					return []string{fmt.Sprint(t.Page), fmt.Sprint(t.Attempt), t.Outcome, orDash(t.StatusCode),
						fmt.Sprintf("%dms", t.DurationMs), oneLine(t.Error, 40), oneLine(t.ResponseBody, 40), when(t.At)}
				})
		}
	}},
	{"failures", "UPLOAD_ID", "List an upload's failure log: the pages not delivered, with their last error.", func(fs *flag.FlagSet) func(context.Context, *api, []string) error {
		asJSON := jsonFlag(fs)
		return func(ctx context.Context, a *api, args []string) error {
			items, err := a.listAll(ctx, uploadPath(args[0], "/failures"), "failures")
			if err != nil {
				return err
			}
			return printList(a, "failures", items, *asJSON, "PAGE\tATTEMPTS\tSTATUS\tERROR\tAT",
				func(f failureRow) []string {
					return []string{fmt.Sprint(f.Page), fmt.Sprint(f.Attempts), orDash(f.StatusCode), oneLine(f.Error, 60), when(f.At)}
				})
		}
	}},
	{"retry", "UPLOAD_ID", "Send an upload's failed pages again.", func(fs *flag.FlagSet) func(context.Context, *api, []string) error {
		wait := fs.Bool("wait", false, "then follow the upload until it finishes")
		return func(ctx context.Context, a *api, args []string) error {
			data, err := a.call(ctx, http.MethodPost, uploadPath(args[0], "/retry"), nil)
			if err != nil {
				return err
			}
			a.printJSON(data)
			if *wait {
				return a.watch(ctx, args[0])
			}
			return nil
		}
	}},
	{"watch", "UPLOAD_ID", "Follow an upload until every page is delivered or failed, then print it.\nIt reads the upload's event stream where the API has one, else asks every half second.", noFlags(func(ctx context.Context, a *api, args []string) error {
		return a.watch(ctx, args[0])
	})},
}

var templateCommands = []subcommand{
	{"list", "", "List the templates.", func(fs *flag.FlagSet) func(context.Context, *api, []string) error {
		asJSON := jsonFlag(fs)
		return func(ctx context.Context, a *api, _ []string) error {
			items, err := a.listAll(ctx, "/v1/templates", "templates")
			if err != nil {
				return err
			}
			return printList(a, "templates", items, *asJSON, "CODE\tNAME\tSTATE\tURL", func(t templateRow) []string {
				return []string{t.Code, oneLine(t.Name, 40), oneLine(t.State, 10), t.Destination.Webhook.URL}
			})
		}
	}},
	{"get", "CODE", "Show a template (secrets masked).", noFlags(func(ctx context.Context, a *api, args []string) error {
		data, err := a.call(ctx, http.MethodGet, templatePath(args[0]), nil)
		if err == nil {
			a.printJSON(data)
		}
		return err
	})},
	{"apply", "CODE", "Create or replace a template from a JSON file (the body of PUT /v1/templates/{code}).", func(fs *flag.FlagSet) func(context.Context, *api, []string) error {
		file := fs.String("f", "", `the template's JSON file, "-" for standard input (required)`)
		return func(ctx context.Context, a *api, args []string) error {
			if *file == "" {
				return errors.New("templates apply needs -f FILE")
			}
			var body []byte
			var err error
			if *file == "-" {
				body, err = io.ReadAll(os.Stdin)
			} else {
				body, err = os.ReadFile(*file) // #nosec G304 -- the file the user names
			}
			if err != nil {
				return err
			}
			if !json.Valid(body) {
				return fmt.Errorf("%s is not JSON", *file)
			}
			data, err := a.call(ctx, http.MethodPut, templatePath(args[0]), json.RawMessage(body))
			if err == nil {
				a.printJSON(data)
			}
			return err
		}
	}},
	{"delete", "CODE", "Delete a template.", noFlags(func(ctx context.Context, a *api, args []string) error {
		if _, err := a.call(ctx, http.MethodDelete, templatePath(args[0]), nil); err != nil {
			return err
		}
		fmt.Fprintf(a.log, "template %s deleted\n", args[0])
		return nil
	})},
	{"test", "CODE", "Send one test request to the template's endpoint now, as a real page is sent,\nand show the answer. Fails unless the endpoint answered 2xx.", func(fs *flag.FlagSet) func(context.Context, *api, []string) error {
		auth := fs.String("auth-value", "", "value of the template's auth header")
		records := fs.String("records", "", "a JSON file with an array of records to send (default one sample record)")
		return func(ctx context.Context, a *api, args []string) error {
			body := map[string]any{}
			if *auth != "" {
				body["authHeaderValue"] = *auth
			}
			if *records != "" {
				data, err := os.ReadFile(*records) // #nosec G304 -- the file the user names
				if err != nil {
					return err
				}
				if !json.Valid(data) {
					return fmt.Errorf("%s is not JSON", *records)
				}
				body["records"] = json.RawMessage(data)
			}
			data, err := a.call(ctx, http.MethodPost, templatePath(args[0], "/test"), body)
			if err != nil {
				return err
			}
			a.printJSON(data)
			var r struct{ Delivered bool }
			if json.Unmarshal(data, &r) == nil && !r.Delivered {
				return errors.New("the test request was not delivered")
			}
			return nil
		}
	}},
	{"pause", "CODE", "Pause a template: no request goes to its endpoint, its pages wait.", noFlags(func(ctx context.Context, a *api, args []string) error {
		data, err := a.call(ctx, http.MethodPost, templatePath(args[0], "/pause"), nil)
		if err == nil {
			a.printJSON(data)
		}
		return err
	})},
	{"resume", "CODE", "Resume a paused template: everything that waited is delivered.", noFlags(func(ctx context.Context, a *api, args []string) error {
		data, err := a.call(ctx, http.MethodPost, templatePath(args[0], "/resume"), nil)
		if err == nil {
			a.printJSON(data)
		}
		return err
	})},
}

func runUploads(ctx context.Context, a *api, args []string) error {
	return runGroup(ctx, a, "uploads", "Uploads: their state, attempts and failure log; retry their failed pages.", uploadCommands, args)
}

func runTemplates(ctx context.Context, a *api, args []string) error {
	return runGroup(ctx, a, "templates", "Templates: where and how an import's pages are delivered.", templateCommands, args)
}
