package processman

import (
	"fmt"
	"io"
	"os"

	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman/cli"
	"github.com/processman/processman/config"
	"github.com/processman/processman/gateway"
	"github.com/processman/processman/launch"
	"github.com/spf13/cobra"
)

// pmCommand is `pocketbase pm`, the processman command line.
func pmCommand(app core.App, cfg Config, source *processSource) *cobra.Command {
	pm := &cobra.Command{
		Use:   "pm",
		Short: "Manages the processes that PocketBase supervises (processman)",
		Long: `Manages the processes that PocketBase supervises (processman).

list, describe, logs, start, stop and restart talk to the running
PocketBase (see --url); check and schema work on the config file alone.`,
	}
	pm.AddCommand(checkCommand(app, cfg, source), schemaCommand())
	cli.AddCommands(pm, app)
	return pm
}

func checkCommand(app core.App, cfg Config, source *processSource) *cobra.Command {
	return &cobra.Command{
		Use:   "check [file]",
		Short: "Validates a pb_processes.json file without serving",
		Long: `Validates a pb_processes.json file (default: the --processes flag, else
pb_data/../pb_processes.json) and the processes registered from Go, and
resolves each command line. Every problem is listed with its JSON path
and a hint. Exits with status 1 when there are problems.`,
		Args: cobra.MaximumNArgs(1),
		Run: func(cmd *cobra.Command, args []string) {
			if len(args) == 1 {
				source.flag = args[0]
			}
			// PocketBase points the command's error writer at stdout, so
			// problems go to os.Stderr directly.
			env := newChildEnv(app, cfg, localURL(""))
			if err := checkConfig(source, env, cmd.OutOrStdout(), os.Stderr); err != nil {
				// PocketBase ignores the error a command returns; the exit
				// status is what scripts and CI look at.
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		},
	}
}

// checkConfig validates the config and resolves every command with the
// environment it would get (without a socket: that is picked at serve);
// it returns an error when anything is wrong.
func checkConfig(source *processSource, env childEnv, stdout, stderr io.Writer) error {
	path, _ := source.path()
	procs, errs, notes := source.load()
	problems := len(errs)
	if problems > 0 {
		fmt.Fprintln(stderr, errs.Error())
	}
	for i, proc := range procs {
		if proc.Name == "" || len(errs.ForIndex(i)) > 0 {
			continue
		}
		if proc.Disabled {
			fmt.Fprintf(stdout, "%-20s disabled\n", proc.Name)
			continue
		}
		full := proc.WithDefaults()
		if full.Upstream != "" {
			if _, err := upstreamSecret(full); err != nil {
				problems++
				fmt.Fprintf(stderr, "%s: process %q: %v\n", path, proc.Name, err)
				continue
			}
			fmt.Fprintf(stdout, "%-20s upstream %s  (route %s)\n", proc.Name, full.Upstream, full.Route)
			continue
		}
		cmd, err := launch.Resolve(full, os.Environ(), envMap(env.of(proc.Name, 0, 0, checkRoute(full))))
		if err != nil {
			problems++
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
			continue
		}
		fmt.Fprintf(stdout, "%-20s %s  (cwd %s)\n", proc.Name, cmd, cmd.Dir)
		for _, note := range notes.ForIndex(i) {
			fmt.Fprintf(stdout, "  note: %s\n", note.Message)
		}
		for _, warning := range cmd.Warnings {
			fmt.Fprintf(stdout, "  warning: %s\n", warning)
		}
	}
	if problems > 0 {
		return fmt.Errorf("%d problem(s) in %s", problems, path)
	}
	if len(procs) == 0 {
		fmt.Fprintf(stdout, "%s: no processes\n", path)
		return nil
	}
	fmt.Fprintf(stdout, "%s: ok, %d process(es)\n", path, len(procs))
	return nil
}

// checkRoute is what a routed process's environment holds in `pm check`:
// the socket and port are only picked when PocketBase serves, so they
// are placeholders.
func checkRoute(proc config.Process) *routeEnv {
	if proc.Route == "" {
		return nil
	}
	target := gateway.Target{Network: "unix", Address: "(a socket picked when PocketBase serves)"}
	if proc.Listen == config.ListenTCP {
		target = gateway.Target{Network: "tcp", Address: "127.0.0.1:0"}
	}
	return &routeEnv{prefix: proc.Route, targets: [][slots]gateway.Target{{target, target}}, secret: "(a secret made when PocketBase serves)"}
}

func schemaCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Prints the JSON Schema of pb_processes.json, for editors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := cmd.OutOrStdout().Write(config.SchemaJSON)
			return err
		},
	}
}
