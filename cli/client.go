package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/processman/processman/config"
	"github.com/processman/processman/control"
)

// Client calls the control API of a running PocketBase.
type Client struct {
	// URL is where PocketBase serves, e.g. http://127.0.0.1:8090.
	URL string
	// Token is a superuser's auth token.
	Token string
	// HTTP is the client to use; nil means one with a 2 minute timeout
	// for plain requests and none for streams.
	HTTP *http.Client
}

// Error is an answer of the API other than 2xx, or a failure to reach it.
type Error struct {
	Status  int    // 0 when the server could not be reached
	Message string // PocketBase's message, or what went wrong
	URL     string
	// ReloadFailure is set for a reload that was given up: why, and the
	// new copy's last lines.
	ReloadFailure *control.ReloadFailure
	// ConfigErrors are those of an apply that changed nothing.
	ConfigErrors []config.Error
}

func (e *Error) Error() string { return e.Message }

// ErrNotRunning means nothing answers at the client's URL.
var ErrNotRunning = errors.New("PocketBase is not running")

func (c *Client) httpClient(stream bool) *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	if stream {
		return &http.Client{}
	}
	return &http.Client{Timeout: control.MaxActionWait + 10*time.Second}
}

// do sends a request to path (under /api/pm) and returns the response of
// a 2xx answer; other answers become an *Error.
func (c *Client) do(ctx context.Context, method, path string, stream bool) (*http.Response, error) {
	u := strings.TrimRight(c.URL, "/") + control.Prefix + path
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, &Error{Message: fmt.Sprintf("invalid server URL %q: %v", c.URL, err), URL: c.URL}
	}
	if c.Token != "" {
		req.Header.Set("Authorization", c.Token)
	}
	resp, err := c.httpClient(stream).Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("%w at %s: start it with `pocketbase serve`, or point --url (or PB_URL) at it", ErrNotRunning, c.URL)
		}
		return nil, &Error{Message: fmt.Sprintf("cannot reach PocketBase at %s: %v", c.URL, err), URL: c.URL}
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var apiErr struct {
		Message string `json:"message"`
		Data    struct {
			ReloadFailure *control.ReloadFailure `json:"reload_failure"`
			Errors        []config.Error         `json:"errors"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &apiErr)
	msg := apiErr.Message
	if msg == "" {
		msg = strings.TrimSpace(string(body))
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && c.Token == "":
		msg = "no superuser credentials: pass --token (or PB_TOKEN), or --email and --password " +
			"(or PB_SUPERUSER_EMAIL and PB_SUPERUSER_PASSWORD); on the server's machine, create a superuser first " +
			"(`pocketbase superuser upsert EMAIL PASSWORD`, or in the dashboard at /_/) and --dir finds it"
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		msg = fmt.Sprintf("%s (%d). The control API needs a superuser: pass --token (or PB_TOKEN), or --email and --password (or PB_SUPERUSER_EMAIL and PB_SUPERUSER_PASSWORD)", msg, resp.StatusCode)
	case resp.StatusCode == http.StatusNotFound:
		if !strings.Contains(msg, "process") {
			msg = fmt.Sprintf("%s (404): is processman registered in the PocketBase at %s?", msg, c.URL)
		}
	}
	return nil, &Error{Status: resp.StatusCode, Message: msg, URL: c.URL, ReloadFailure: apiErr.Data.ReloadFailure, ConfigErrors: apiErr.Data.Errors}
}

func (c *Client) getJSON(ctx context.Context, method, path string, into any) error {
	resp, err := c.do(ctx, method, path, false)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return &Error{Message: fmt.Sprintf("unexpected answer from %s%s: %v", c.URL, path, err), URL: c.URL}
	}
	return nil
}

// List returns every process.
func (c *Client) List(ctx context.Context) ([]control.Summary, error) {
	var list struct {
		Items []control.Summary `json:"items"`
	}
	err := c.getJSON(ctx, http.MethodGet, "/list", &list)
	return list.Items, err
}

// Describe returns one process in detail.
func (c *Client) Describe(ctx context.Context, name string) (control.Detail, error) {
	var d control.Detail
	err := c.getJSON(ctx, http.MethodGet, "/"+url.PathEscape(name), &d)
	return d, err
}

// Apply asks the server to re-read its config file and apply the
// difference; a file with errors changes nothing and comes back as an
// *Error with ConfigErrors.
func (c *Client) Apply(ctx context.Context) (control.ApplyResult, error) {
	var r control.ApplyResult
	err := c.getJSON(ctx, http.MethodPost, "/apply", &r)
	return r, err
}

// Act asks for "start", "stop", "restart" or "reload" of a process, or
// of one instance ("api:1"), and returns the process afterwards.
func (c *Client) Act(ctx context.Context, action, name string) (control.Summary, error) {
	var s control.Summary
	err := c.getJSON(ctx, http.MethodPost, "/"+url.PathEscape(name)+"/"+action, &s)
	return s, err
}

// Logs returns the last n lines of a process.
func (c *Client) Logs(ctx context.Context, name string, n int) ([]control.Line, error) {
	var list struct {
		Items []control.Line `json:"items"`
	}
	err := c.getJSON(ctx, http.MethodGet, "/"+url.PathEscape(name)+"/logs?lines="+strconv.Itoa(n), &list)
	return list.Items, err
}

// FollowLogs calls fn with the last n lines of a process and then every
// new line, until ctx ends or the server goes away.
func (c *Client) FollowLogs(ctx context.Context, name string, n int, fn func(control.Line)) error {
	resp, err := c.do(ctx, http.MethodGet, "/"+url.PathEscape(name)+"/logs?follow=true&lines="+strconv.Itoa(n), true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return readEvents(ctx, resp.Body, func(event string, data []byte) {
		var l control.Line
		if event == "line" && json.Unmarshal(data, &l) == nil {
			fn(l)
		}
	})
}

// readEvents reads server-sent events until the stream ends.
func readEvents(ctx context.Context, body io.Reader, fn func(event string, data []byte)) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	event := ""
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			event = ""
		case strings.HasPrefix(string(line), "event: "):
			event = string(line[len("event: "):])
		case strings.HasPrefix(string(line), "data: "):
			fn(event, line[len("data: "):])
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("the server ended the stream (PocketBase stopped?)")
}
