# Helpers shared by the scripts in bench/ (sourced, not run).
# Expects the caller to be in the repository root with `set -euo pipefail`.
# Command substitutions ("$(measure_wrk …)") fail the caller like plain commands.
shopt -s inherit_errexit

PG_BASE_URL="${VALET_BENCH_PG:-postgres://postgres@127.0.0.1:5432/test}"
TICKS_PER_SEC="$(getconf CLK_TCK)"
RESULTS_DIR="bench/results"
mkdir -p "$RESULTS_DIR"
# Where `cargo build --release` puts binaries (CARGO_TARGET_DIR honoured).
RELEASE_DIR="${CARGO_TARGET_DIR:-target}/release"

# The browser-flow load generator, with bench/flows.py's options and JSON: the
# Rust one (crates/valet/examples/flow_load.rs, built in release on first use),
# which costs the shared cores a fraction of the Python one's CPU per request;
# VALET_BENCH_DRIVER=python runs bench/flows.py instead.
run_flows() {
  if [ "${VALET_BENCH_DRIVER:-rust}" = python ]; then
    python3 bench/flows.py "$@"
    return
  fi
  if [ ! -x "$RELEASE_DIR/examples/flow_load" ]; then
    echo "building the flow load generator (release)" >&2
    cargo build --release -q -p valet --example flow_load
  fi
  "$RELEASE_DIR/examples/flow_load" "$@"
}

# Installs a Debian package when a command is missing.
need() { # need COMMAND PACKAGE
  command -v "$1" >/dev/null && return 0
  echo "installing $2 (Debian package)" >&2
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

# node and the oidc-provider the comparisons run, from npm into
# bench/oidc-provider/node_modules (pinned by its package-lock.json).
ensure_oidc_provider() {
  need node nodejs
  [ -d bench/oidc-provider/node_modules/oidc-provider ] && return 0
  echo "installing oidc-provider (npm)" >&2
  (cd bench/oidc-provider && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

# The local PostgreSQL: started like .ci/run does when it is installed but not
# answering; the server itself is not installed here (see docs/benchmarks.md).
ensure_postgres() {
  need pg_isready postgresql-client
  if ! pg_isready -q -d "$PG_BASE_URL" && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -d "$PG_BASE_URL" && break; sleep 1; done
  fi
  pg_isready -q -d "$PG_BASE_URL" || {
    echo "PostgreSQL is not reachable at $PG_BASE_URL (set VALET_BENCH_PG, or skip it: VALET_BENCH_BACKENDS=sqlite for scale.sh)" >&2
    return 1
  }
}

# The process and its direct children (node:cluster workers).
pids_of() { echo "$1" $(pgrep -P "$1" || true); }

cpu_split() { # cpu_split PID... -> "utime stime", each summed, in clock ticks
  local user=0 system=0 pid u s
  for pid in "$@"; do
    read -r u s < <(awk '{print $14, $15}' "/proc/$pid/stat")
    user=$((user + u)); system=$((system + s))
  done
  echo "$user $system"
}

kib_field() { # kib_field FIELD PID... -> summed, in KiB (VmHWM, VmRSS)
  local field="$1" total=0 pid
  shift
  for pid in "$@"; do
    total=$((total + $(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/status")))
  done
  echo "$total"
}

wait_ready() { # wait_ready URL [TRIES]
  local tries="${2:-300}"
  for _ in $(seq 1 "$tries"); do
    curl -fs "$1" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "no answer from $1" >&2
  return 1
}

json_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# The valet binary to measure: BINARY when given, else the release build (made
# if missing).
valet_binary() { # valet_binary [BINARY]
  if [ -n "${1:-}" ]; then
    echo "$1"
    return
  fi
  local built="${CARGO_TARGET_DIR:-target}/release/valet"
  [ -x "$built" ] || cargo build --release -q -p valet >&2
  echo "$built"
}

# A fresh PostgreSQL schema; prints the database URL that selects it.
pg_schema() { # pg_schema NAME
  psql -q -v ON_ERROR_STOP=1 "$PG_BASE_URL" -c "DROP SCHEMA IF EXISTS $1 CASCADE" -c "CREATE SCHEMA $1" >/dev/null
  echo "${PG_BASE_URL}?options[search_path]=$1"
}
pg_drop_schema() { psql -q "$PG_BASE_URL" -c "DROP SCHEMA IF EXISTS $1 CASCADE" >/dev/null 2>&1 || true; }

# wrk Lua script: POST a fixed form body (with Basic auth), or GET when BODY is empty.
# The done() hook prints one machine-readable BENCH line.
wrk_script() { # wrk_script FILE BODY [BASIC]
  {
    if [ -n "$2" ]; then
      echo 'wrk.method = "POST"'
      echo "wrk.body = \"$2\""
      echo 'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"'
    fi
    [ -n "${3:-}" ] && echo "wrk.headers[\"Authorization\"] = \"Basic $3\""
    wrk_done_hook
  } >"$1"
}

wrk_done_hook() {
  cat <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d errors=%d non2xx=%d duration_us=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, summary.duration, latency:percentile(50), latency:percentile(99)))
end
LUA
}

# Runs wrk against URL for DURATION seconds after a 3 s warm-up (none with WARMUP=0), with the CPU time
# of PIDS over the measured run. Prints one JSON object.
measure_wrk() { # measure_wrk LUA URL DURATION CONNECTIONS PID...
  local lua="$1" url="$2" duration="$3" conns="$4"
  shift 4
  local out cpu0 cpu1 line
  if [ "${WARMUP:-1}" = 1 ]; then wrk -t1 -c"$conns" -d3s -s "$lua" "$url" >/dev/null; fi
  cpu0="$(cpu_split "$@")"
  out="$(wrk -t1 -c"$conns" -d"${duration}s" -s "$lua" "$url")"
  cpu1="$(cpu_split "$@")"
  line="$(grep '^BENCH' <<<"$out")" || { echo "wrk printed no BENCH line for $url" >&2; return 1; }
  python3 - "$line" "$cpu0" "$cpu1" "$TICKS_PER_SEC" "$conns" <<'PY'
import json, re, sys
line, cpu0, cpu1, hz, conns = sys.argv[1:]
v = {k: int(x) for k, x in re.findall(r"(\w+)=(\d+)", line)}
ok = v["requests"] - v["non2xx"]
(user0, system0), (user1, system1) = ([int(x) for x in c.split()] for c in (cpu0, cpu1))
cpu_s = (user1 + system1 - user0 - system0) / int(hz)
print(json.dumps({
    "requests": v["requests"], "errors": v["errors"], "non2xx": v["non2xx"],
    "per_s": ok / (v["duration_us"] / 1e6), "p50_ms": v["p50_us"] / 1e3, "p99_ms": v["p99_us"] / 1e3,
    "cpu_s": cpu_s, "cpu_user_s": (user1 - user0) / int(hz), "cpu_system_s": (system1 - system0) / int(hz),
    "cpu_per_req_us": cpu_s / ok * 1e6 if ok else None, "connections": int(conns),
}))
PY
}

# Appends a JSON record {"bench":..., "server":..., "test":..., ...} to a results file.
record() { # record FILE SERVER TEST JSON
  python3 - "$@" <<'PY'
import json, sys
path, server, test, data = sys.argv[1:]
entry = {"server": server, "test": test}
entry.update(json.loads(data))
with open(path, "a") as f:
    f.write(json.dumps(entry) + "\n")
PY
}

# {"peak_rss_mib": VmHWM, "rss_mib": VmRSS}, summed over PIDS.
rss_json() { # rss_json PID...
  echo "{\"peak_rss_mib\": $(awk "BEGIN {print $(kib_field VmHWM "$@") / 1024}"), \"rss_mib\": $(awk "BEGIN {print $(kib_field VmRSS "$@") / 1024}")}"
}

# Lua for the refresh run: tokens from a file, each response's new one queued.
refresh_lua() { # refresh_lua FILE TOKENS_FILE BASIC
  cat >"$1" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $3"
local queue, head, tail = {}, 1, 0
init = function(args)
  for line in io.lines("$2") do tail = tail + 1; queue[tail] = line end
end
request = function()
  local token = "vrt_exhausted"
  if head <= tail then token = queue[head]; queue[head] = nil; head = head + 1 end
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. token)
end
response = function(status, headers, body)
  local token = body:match('"refresh_token":"(vrt_[%w_%-]+)"')
  if token then tail = tail + 1; queue[tail] = token end
end
LUA
  wrk_done_hook >>"$1"
}

# Writes COUNT files PREFIX.0 … PREFIX.{COUNT-1} of distinct real refresh tokens of
# up to SAMPLE seeded families picked at random (tokens as crates/valet/examples/seed.rs
# makes them), so that no run presents a token another run used.
token_chunks() { # token_chunks TOKEN_SEED FAMILIES SAMPLE PREFIX COUNT
  python3 - "$@" <<'PY'
import base64, hashlib, random, sys
seed, families, sample, prefix, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
picked = random.Random(7).sample(range(families), min(families, sample))
tokens = ["vrt_" + base64.urlsafe_b64encode(hashlib.sha256(f"{seed}:{i}".encode()).digest()).rstrip(b"=").decode()
          for i in picked]
size = len(tokens) // count
for c in range(count):
    with open(f"{prefix}.{c}", "w") as f:
        f.write("\n".join(tokens[c * size:(c + 1) * size]) + "\n")
PY
}
