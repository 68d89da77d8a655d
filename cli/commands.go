// Package cli is the client side of `pocketbase pm`: the verbs that talk
// to a running PocketBase through the control API (list, logs, start,
// stop, restart, reload, describe), in PM2's habits.
//
//	pm := &cobra.Command{Use: "pm"}
//	cli.AddCommands(pm, app)
//
// The server is found through --url, PB_URL, the server info file that
// a serving PocketBase writes into pb_data, or http://127.0.0.1:8090.
// Credentials come from --token or PB_TOKEN, from --email and --password
// (or PB_SUPERUSER_EMAIL and PB_SUPERUSER_PASSWORD), or else from
// pb_data itself: on the server's machine a short-lived token is made for
// the first superuser, the way `pocketbase superuser` works there.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman/control"
	"github.com/processman/processman/database"
	"github.com/spf13/cobra"
)

// DefaultURL is where the CLI looks for PocketBase when nothing says.
const DefaultURL = "http://127.0.0.1:8090"

// localTokenTTL is how long a token made from pb_data lasts.
const localTokenTTL = 5 * time.Minute

// flags are the options shared by every verb.
type flags struct {
	url, token, email, password string
	json                        bool
}

// AddCommands adds the verbs to pm. app is the PocketBase app of the
// command line (bootstrapped by PocketBase before a command runs); it
// gives the data dir.
func AddCommands(pm *cobra.Command, app core.App) {
	f := &flags{}
	pf := pm.PersistentFlags()
	pf.StringVar(&f.url, "url", "", "PocketBase's address (default: PB_URL, else where the PocketBase of --dir serves, else "+DefaultURL+")")
	pf.StringVar(&f.token, "token", "", "a superuser auth token (default: PB_TOKEN)")
	pf.StringVar(&f.email, "email", "", "a superuser's email, with --password (default: PB_SUPERUSER_EMAIL)")
	pf.StringVar(&f.password, "password", "", "the superuser's password (default: PB_SUPERUSER_PASSWORD)")
	pf.BoolVar(&f.json, "json", false, "print JSON instead of text")

	var lines int
	var follow bool
	logs := &cobra.Command{
		Use:   "logs NAME[:INSTANCE]",
		Short: "Prints a process's recent output (NAME:INSTANCE: one instance's); -f follows new lines",
		Args:  cobra.ExactArgs(1),
		Run: run(app, f, func(ctx context.Context, c *Client, w io.Writer, args []string) error {
			name := args[0]
			// Lines say their instance once the process shows it has
			// several (a line of an instance above 0).
			several := strings.Contains(name, ":")
			show := func(l control.Line) {
				several = several || l.Instance > 0
				label := name
				if several && !strings.Contains(name, ":") {
					label = fmt.Sprintf("%s:%d", name, l.Instance)
				}
				f.printLine(w, label, l)
			}
			if !follow {
				ls, err := c.Logs(ctx, name, lines)
				if err != nil {
					return err
				}
				for _, l := range ls {
					several = several || l.Instance > 0
				}
				for _, l := range ls {
					show(l)
				}
				return nil
			}
			return c.FollowLogs(ctx, name, lines, show)
		}),
	}
	logs.Flags().IntVarP(&lines, "lines", "n", control.DefaultLogLines, "how many recent lines")
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until interrupted")

	pm.AddCommand(
		&cobra.Command{
			Use:     "list",
			Aliases: []string{"ls", "status"},
			Short:   "Lists the processes of the running PocketBase",
			Args:    cobra.NoArgs,
			Run: run(app, f, func(ctx context.Context, c *Client, w io.Writer, _ []string) error {
				procs, err := c.List(ctx)
				if err != nil {
					return err
				}
				if f.json {
					return writeJSON(w, procs)
				}
				printTable(w, procs)
				return nil
			}),
		},
		&cobra.Command{
			Use:     "describe NAME[:INSTANCE]",
			Aliases: []string{"show", "info"},
			Short:   "Shows one process: command, environment (secrets redacted), last crash",
			Args:    cobra.ExactArgs(1),
			Run: run(app, f, func(ctx context.Context, c *Client, w io.Writer, args []string) error {
				d, err := c.Describe(ctx, args[0])
				if err != nil {
					return err
				}
				if f.json {
					return writeJSON(w, d)
				}
				printDetail(w, d)
				return nil
			}),
		},
		actionCommand(app, f, "start", "Starts a stopped or errored process"),
		actionCommand(app, f, "stop", "Stops a process and its whole process tree"),
		actionCommand(app, f, "restart", "Restarts a process (starts it if it is not running)"),
		actionCommand(app, f, "reload", "Replaces a process without downtime: a routed one gets a new copy that takes over once ready, "+
			"one instance at a time; an unrouted one is restarted. Exits 1 if the new copy does not become ready"),
		applyCommand(app, f),
		logs,
	)
}

func applyCommand(app core.App, f *flags) *cobra.Command {
	return &cobra.Command{
		Use:   "apply",
		Short: "Applies the edited pb_processes.json without restarting PocketBase",
		Long: "Applies the edited pb_processes.json without restarting PocketBase.\n\n" +
			"The server re-reads its config file. A file with any error changes nothing: every error is listed (as `pm check` does) and the exit status is 1. " +
			"Otherwise new processes start, removed ones stop (their whole tree), changed ones are reloaded (a routed process whose command or environment changed) " +
			"or replaced, and unchanged ones keep running; routes are mounted, unmounted and moved with them. Processes registered from Go code are not touched.",
		Args: cobra.NoArgs,
		Run: run(app, f, func(ctx context.Context, c *Client, w io.Writer, _ []string) error {
			result, err := c.Apply(ctx)
			var apiErr *Error
			if errors.As(err, &apiErr) && len(apiErr.ConfigErrors) > 0 && !f.json {
				for _, e := range apiErr.ConfigErrors {
					fmt.Fprintln(os.Stderr, "  "+e.Error())
				}
			}
			if err != nil {
				return err
			}
			if f.json {
				return writeJSON(w, result)
			}
			printApply(w, result)
			for _, change := range result.Changes {
				if change.Error != "" {
					return fmt.Errorf("the change to %s failed: %s", change.Process, change.Error)
				}
			}
			return nil
		}),
	}
}

func actionCommand(app core.App, f *flags, action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " NAME[:INSTANCE]",
		Short: short,
		Long:  short + ".\n\nNAME acts on every instance of the process; NAME:INSTANCE (api:1) on one.",
		Args:  cobra.ExactArgs(1),
		Run: run(app, f, func(ctx context.Context, c *Client, w io.Writer, args []string) error {
			s, err := c.Act(ctx, action, args[0])
			var apiErr *Error
			if errors.As(err, &apiErr) && apiErr.ReloadFailure != nil && !f.json {
				fmt.Fprintln(os.Stderr, "the new copy's last output:")
				for _, l := range apiErr.ReloadFailure.LastLines {
					printLine(os.Stderr, "", l)
				}
			}
			if err != nil {
				return err
			}
			if f.json {
				return writeJSON(w, s)
			}
			printTable(w, []control.Summary{s})
			return nil
		}),
	}
}

func (f *flags) printLine(w io.Writer, name string, l control.Line) {
	if f.json {
		_ = json.NewEncoder(w).Encode(l)
		return
	}
	printLine(w, name, l)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// run wraps a verb: it finds the server and credentials, runs the verb
// until it ends or the user interrupts, and exits with status 1 and a
// message on stderr on failure (PocketBase ignores the errors commands
// return, and points their error output at stdout).
func run(app core.App, f *flags, verb func(ctx context.Context, c *Client, w io.Writer, args []string) error) func(*cobra.Command, []string) {
	return func(cmd *cobra.Command, args []string) {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		c, err := f.client(ctx, app)
		if err == nil {
			err = verb(ctx, c, cmd.OutOrStdout(), args)
		}
		if err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "processman:", err)
			os.Exit(1)
		}
	}
}

// client resolves the server's URL and the credentials.
func (f *flags) client(ctx context.Context, app core.App) (*Client, error) {
	c := &Client{URL: firstOf(f.url, os.Getenv("PB_URL"))}
	var server control.ServerInfo
	if app != nil {
		server, _ = control.ReadServerInfo(app.DataDir())
	}
	if c.URL == "" {
		c.URL = server.URL
	}
	if c.URL == "" {
		c.URL = DefaultURL
	}
	c.URL = strings.TrimRight(c.URL, "/")

	c.Token = firstOf(f.token, os.Getenv("PB_TOKEN"))
	if c.Token != "" {
		return c, nil
	}
	email := firstOf(f.email, os.Getenv("PB_SUPERUSER_EMAIL"))
	password := firstOf(f.password, os.Getenv("PB_SUPERUSER_PASSWORD"))
	if email != "" || password != "" {
		if email == "" || password == "" {
			return nil, errors.New("give both --email and --password (or PB_SUPERUSER_EMAIL and PB_SUPERUSER_PASSWORD)")
		}
		token, err := c.login(ctx, email, password)
		if err != nil {
			return nil, err
		}
		c.Token = token
		return c, nil
	}
	token, err := localToken(app, c.URL, server.Database)
	c.Token = token
	return c, err
}

// login authenticates a superuser with a password.
func (c *Client) login(ctx context.Context, email, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"identity": email, "password": password})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/api/collections/"+core.CollectionNameSuperusers+"/auth-with-password", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.httpClient(false).Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return "", fmt.Errorf("%w at %s: start it with `pocketbase serve`, or point --url (or PB_URL) at it", ErrNotRunning, c.URL)
		}
		return "", fmt.Errorf("cannot reach PocketBase at %s: %w", c.URL, err)
	}
	defer resp.Body.Close()
	var out struct {
		Token   string `json:"token"`
		Message string `json:"message"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusOK || out.Token == "" {
		return "", fmt.Errorf("superuser login as %s failed (%d %s): check --email and --password", email, resp.StatusCode, out.Message)
	}
	return out.Token, nil
}

// localToken makes a short-lived token for the first superuser of the
// app's database, or returns "" when there is none. It fails when that
// database is not the one of the server at url (serverDatabase, from the
// server info file), or is a PostgreSQL database without a superuser:
// both mean the command was run without the server's database settings.
func localToken(app core.App, url, serverDatabase string) (string, error) {
	if app == nil || !app.IsBootstrapped() {
		return "", nil
	}
	local, _ := database.Detect(app)
	// An SQLite file is found through the same pb_data as the server info
	// file, so only a database server can be another one than serve's.
	if local.Driver != database.SQLite && serverDatabase != "" && local.Identity() != serverDatabase {
		return "", fmt.Errorf("the PocketBase at %s uses the database %s, but this command opened %s: "+
			"pm reads the superusers of the server's database, so run it with the settings serve had "+
			"(on a PostgreSQL fork: --postgresUrl or POSTGRES_URL, and POSTGRES_DATA_DB), "+
			"or pass --token (or PB_TOKEN), or --email and --password", url, serverDatabase, local.Identity())
	}
	records, err := app.FindRecordsByFilter(core.CollectionNameSuperusers, "email != {:installer}", "created", 1, 0,
		dbx.Params{"installer": core.DefaultInstallerEmail})
	if (err != nil || len(records) == 0) && local.Driver == database.Postgres {
		return "", fmt.Errorf("no superuser in the PostgreSQL database %s that this command opened: "+
			"pm reads the superusers of the server's database, so run it with the settings serve had "+
			"(--postgresUrl or POSTGRES_URL, and POSTGRES_DATA_DB), or pass --token (or PB_TOKEN), "+
			"or --email and --password", local.Identity())
	}
	if err != nil || len(records) == 0 {
		return "", nil
	}
	token, err := records[0].NewStaticAuthToken(localTokenTTL)
	if err != nil {
		return "", nil
	}
	return token, nil
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
