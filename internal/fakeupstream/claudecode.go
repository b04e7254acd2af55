package fakeupstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// ClaudeCodeVersion is the @anthropic-ai/claude-code version pinned in
// tools/package.json.
const ClaudeCodeVersion = "2.1.332"

// ClaudeCodeBashRoundTrip scripts the two streamed /v1/messages replies of
// a Claude Code tool-use round trip: first a short text and a tool_use of
// Claude Code's own Bash tool running command, then, once Claude Code sends
// the tool_result back, an end_turn reply saying finalText (which `claude
// -p` prints). Both are in the recorded stream format and name the model
// the request asked for (Reply.EchoModel), as the API does.
//
// Each reply only matches the request it is meant for (the first needs a
// request offering the Bash tool and carrying no tool_result, the second
// one carrying a tool_result), so other calls Claude Code might make fall
// through to the defaults. Enqueue them on "/v1/messages":
//
//	s.Enqueue("/v1/messages", fakeupstream.ClaudeCodeBashRoundTrip("echo metis-ok", "Done: metis-ok")...)
func ClaudeCodeBashRoundTrip(command, finalText string) []Reply {
	input, _ := json.Marshal(struct {
		Command     string `json:"command"`
		Description string `json:"description"`
	}{command, "Run the requested command"})
	first := AnthropicStream("", 4000, "tool_use",
		TextBlock("I'll run that command."),
		ToolUseBlock("Bash", string(input)))
	first.Match = func(r *Recorded) bool {
		req := parseRequest(r.Body)
		return req.hasTool("Bash") && !req.lastUserHasToolResult()
	}
	second := AnthropicStream("", 4100, "end_turn", TextBlock(finalText))
	second.Match = func(r *Recorded) bool { return parseRequest(r.Body).lastUserHasToolResult() }
	first.EchoModel, second.EchoModel = true, true
	return []Reply{first, second}
}

// ToolResults returns the tool_result blocks of the last user message of an
// Anthropic request body, decoded; a test reads a Bash result's output in
// their "content".
func ToolResults(body string) []map[string]any {
	req := parseRequest(body)
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role != "user" {
			continue
		}
		var blocks []map[string]any
		if json.Unmarshal(req.Messages[i].Content, &blocks) != nil {
			return nil
		}
		var out []map[string]any
		for _, b := range blocks {
			if b["type"] == "tool_result" {
				out = append(out, b)
			}
		}
		return out
	}
	return nil
}

func (r request) hasTool(name string) bool {
	for _, raw := range r.Tools {
		var t struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(raw, &t) == nil && t.Name == name {
			return true
		}
	}
	return false
}

// RepoRoot is the absolute path of the repository this package was built
// from.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// ClaudeBinary finds the pinned Claude Code executable: $METIS_CLAUDE_BIN
// when set, else tools/node_modules/.bin/claude in the repository (run
// tools/install.sh to get it), else the platform package's binary that the
// npm wrapper would have copied there. It returns an error when none is
// installed, so tests can skip.
func ClaudeBinary() (string, error) {
	if p := os.Getenv("METIS_CLAUDE_BIN"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("METIS_CLAUDE_BIN=%s is not an executable file", p)
	}
	nm := filepath.Join(RepoRoot(), "tools", "node_modules")
	candidates := []string{
		filepath.Join(nm, ".bin", "claude"),
		filepath.Join(nm, "@anthropic-ai", "claude-code-"+runtime.GOOS+"-"+goarchNode(), "claude"),
	}
	for _, c := range candidates {
		if isExecutable(c) && isNative(c) {
			return c, nil
		}
	}
	return "", errors.New("claude code is not installed: run tools/install.sh")
}

// ClaudeEnv returns the environment that runs Claude Code offline against
// baseURL with apiKey: the variables wire-notes §1.8 names, a private HOME
// (and config dir) so no user settings or credentials leak in, and PATH
// kept for the Bash tool.
func ClaudeEnv(baseURL, apiKey, home string) []string {
	return []string{
		"ANTHROPIC_BASE_URL=" + baseURL,
		"ANTHROPIC_API_KEY=" + apiKey,
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
		"HOME=" + home,
		"CLAUDE_CONFIG_DIR=" + filepath.Join(home, ".claude"),
		"PATH=" + os.Getenv("PATH"),
		"TERM=dumb",
		"NO_COLOR=1",
	}
}

// ClaudeCommand builds `claude -p prompt --allowedTools Bash [--model
// model]` to run in dir (a temporary directory also used as HOME) against
// baseURL, killed when ctx ends. Its stdin is empty; the caller sets
// Stdout/Stderr, may append to Env, and runs it.
func ClaudeCommand(ctx context.Context, bin, baseURL, apiKey, dir, model, prompt string) *exec.Cmd {
	args := []string{"-p", prompt, "--allowedTools", "Bash"}
	if model != "" {
		args = append(args, "--model", model)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = ClaudeEnv(baseURL, apiKey, dir)
	return cmd
}

func goarchNode() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x64"
	default:
		return runtime.GOARCH
	}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// isNative reports whether p is a real binary rather than the npm
// wrapper's placeholder (a small script that tells to run the postinstall).
func isNative(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Size() > 1<<20
}

// CodexBinary finds the pinned Codex CLI executable: $METIS_CODEX_BIN when
// set, else the platform package's binary in tools/node_modules (run
// tools/install.sh to get it), else the npm wrapper that starts it. It
// returns an error when none is installed, so tests can skip.
func CodexBinary() (string, error) {
	if p := os.Getenv("METIS_CODEX_BIN"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("METIS_CODEX_BIN=%s is not an executable file", p)
	}
	nm := filepath.Join(RepoRoot(), "tools", "node_modules")
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	triple := arch + "-unknown-linux-musl"
	if runtime.GOOS == "darwin" {
		triple = arch + "-apple-darwin"
	}
	candidates := []string{
		filepath.Join(nm, "@openai", "codex-"+runtime.GOOS+"-"+goarchNode(), "vendor", triple, "bin", "codex"),
		filepath.Join(nm, ".bin", "codex"),
	}
	for _, c := range candidates {
		if isExecutable(c) {
			return c, nil
		}
	}
	return "", errors.New("codex CLI is not installed: run tools/install.sh")
}

// CodexCommand builds `codex exec` for prompt, run in dir (a temporary
// directory, also its HOME and, under it, CODEX_HOME) against the gateway
// at baseURL with apiKey: model and the gateway as a custom model provider
// speaking the Responses API, set as the README's config.toml sets them
// (here with -c), and the sandbox is off
// (the harness's container may not allow Codex's); config are further
// -c settings (model_reasoning_effort="low"). It creates CODEX_HOME,
// which Codex requires to exist. The command is killed when ctx ends; the
// caller sets Stdout/Stderr and runs it.
func CodexCommand(ctx context.Context, bin, baseURL, apiKey, dir, model, prompt string, config ...string) *exec.Cmd {
	args := []string{"exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
		"-c", `model="` + model + `"`, "-c", `model_provider="metis"`, "-c", `model_providers.metis.name="Metis"`,
		"-c", `model_providers.metis.base_url="` + baseURL + `/v1"`, "-c", `model_providers.metis.env_key="METIS_KEY"`,
		"-c", `model_providers.metis.wire_api="responses"`}
	for _, c := range config {
		args = append(args, "-c", c)
	}
	args = append(args, prompt)
	_ = os.MkdirAll(filepath.Join(dir, ".codex"), 0o700)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir, "CODEX_HOME=" + filepath.Join(dir, ".codex"), "METIS_KEY=" + apiKey,
		"PATH=" + os.Getenv("PATH"), "TERM=dumb", "NO_COLOR=1"}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}
