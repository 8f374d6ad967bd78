#!/usr/bin/env bash
# A private RabbitMQ node for bench/compare: loopback only, on
# ports of its own, with its data, logs, cookie and plugins in one folder,
# so it neither meets nor disturbs a RabbitMQ the machine may already run.
#
#   bench/rabbitmq.sh          install if missing, start, print the AMQP URL
#   bench/rabbitmq.sh stop     stop the node (and the epmd it started)
#   bench/rabbitmq.sh pid      print the PID of the node's beam.smp
#   bench/rabbitmq.sh ctl ...  rabbitmqctl against the node, e.g.
#                              `ctl list_queues name messages_unacknowledged`
#
# The node is usher-bench-AMQP_PORT@localhost. Starting twice is harmless:
# a node that already answers is reused.
# Stopping a node that is not running is harmless too. All progress goes
# to stderr; stdout carries only the URL (start) or the PID (pid).
#
# Environment (defaults in brackets):
#   USHER_RABBIT_DIR        state folder [${TMPDIR:-/tmp}/usher-bench-rabbitmq]
#   USHER_RABBIT_AMQP_PORT  AMQP port [45672]
#   USHER_RABBIT_DIST_PORT  inter-node port [45682]; the CLI tools take
#                           the next four, epmd the one after those
#
# RabbitMQ's defaults are 5672 (AMQP), 25672 (distribution), 4369 (epmd)
# and 35672-35682 (CLI tools): none of them is used here, and every
# listener binds 127.0.0.1.

set -euo pipefail

DIR=${USHER_RABBIT_DIR:-${TMPDIR:-/tmp}/usher-bench-rabbitmq}
AMQP_PORT=${USHER_RABBIT_AMQP_PORT:-45672}
DIST_PORT=${USHER_RABBIT_DIST_PORT:-45682}
CTL_PORT_MIN=$((DIST_PORT + 1))
CTL_PORT_MAX=$((DIST_PORT + 4))
EPMD_PORT=$((DIST_PORT + 5))
NODE=usher-bench-${AMQP_PORT}@localhost
URL="amqp://guest:guest@127.0.0.1:${AMQP_PORT}"
START_TIMEOUT_S=90
STOP_TIMEOUT_S=30

# The sbin wrappers switch to the rabbitmq user and reset the environment;
# the scripts they call keep our variables and run as whoever we are.
RABBIT_BIN=/usr/lib/rabbitmq/bin

log() { echo "rabbitmq.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# --- install -------------------------------------------------------------

install_if_missing() {
  [[ -x "$RABBIT_BIN/rabbitmq-server" ]] && return
  [[ $(id -u) -eq 0 ]] || die "rabbitmq-server is not installed and" \
    "installing it needs root: apt-get install -y rabbitmq-server"

  # The package would start the system-wide service, listening on every
  # interface on 5672. Where no policy forbids that already (containers
  # usually have one), forbid it for the length of the install.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added_policy=1
  fi
  log "installing rabbitmq-server with apt-get"
  local status=0
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends rabbitmq-server; } \
    >&2 || status=$?
  [[ $added_policy -eq 1 ]] && rm -f "$policy"
  [[ $status -eq 0 ]] || die "apt-get failed with exit code $status"
  [[ -x "$RABBIT_BIN/rabbitmq-server" ]] ||
    die "apt-get installed rabbitmq-server but $RABBIT_BIN/rabbitmq-server" \
      "is missing; the package layout differs from Debian 12's"
}

# --- the node's environment ----------------------------------------------

setup_env() {
  mkdir -p "$DIR/mnesia" "$DIR/log" "$DIR/home"
  chmod 700 "$DIR" "$DIR/home"

  # Our own cookie, read by the node and by the CLI tools through $HOME.
  if [[ ! -s "$DIR/home/.erlang.cookie" ]]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' \
      >"$DIR/home/.erlang.cookie")
  fi
  chmod 400 "$DIR/home/.erlang.cookie"
  # No plugins: no management listener on 15672, nothing else to bind.
  echo '[].' >"$DIR/enabled_plugins"
  : >"$DIR/rabbitmq-env.conf"
  cat >"$DIR/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:${AMQP_PORT}
loopback_users.guest = true
EOF

  local loopback='-kernel inet_dist_use_interface {127,0,0,1}'
  export HOME="$DIR/home"
  export RABBITMQ_NODENAME=$NODE
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT=$AMQP_PORT
  export RABBITMQ_DIST_PORT=$DIST_PORT
  export RABBITMQ_CTL_DIST_PORT_MIN=$CTL_PORT_MIN
  export RABBITMQ_CTL_DIST_PORT_MAX=$CTL_PORT_MAX
  export RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf"
  export RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
  export RABBITMQ_MNESIA_BASE="$DIR/mnesia"
  export RABBITMQ_LOG_BASE="$DIR/log"
  export RABBITMQ_PID_FILE="$DIR/beam.pid"
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=$loopback
  export RABBITMQ_CTL_ERL_ARGS=$loopback
  export ERL_EPMD_ADDRESS=127.0.0.1
  export ERL_EPMD_PORT=$EPMD_PORT
}

ctl() { "$RABBIT_BIN/rabbitmqctl" -n "$NODE" "$@"; }

# The PID in the pid file, if that process is alive and is a beam.smp.
beam_pid() {
  local pid
  pid=$(cat "$DIR/beam.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == beam.smp ]] || return 1
  echo "$pid"
}

# Someone else's process on one of our ports: refuse rather than collide.
check_ports_free() {
  local port
  for port in "$AMQP_PORT" "$DIST_PORT" "$EPMD_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "127.0.0.1:$port is taken by another process; set" \
        "USHER_RABBIT_AMQP_PORT / USHER_RABBIT_DIST_PORT to free ports"
    fi
  done
}

# --- start and stop ------------------------------------------------------

start() {
  install_if_missing
  setup_env

  if beam_pid >/dev/null && ctl status >/dev/null 2>&1; then
    log "node $NODE already running (pid $(beam_pid))"
    echo "$URL"
    return
  fi
  check_ports_free

  log "starting $NODE on 127.0.0.1:$AMQP_PORT (state in $DIR)"
  rm -f "$DIR/beam.pid"
  # setsid: the node outlives this script and takes no signals meant
  # for the caller's terminal.
  setsid "$RABBIT_BIN/rabbitmq-server" >"$DIR/log/startup.out" 2>&1 \
    </dev/null &

  if ! timeout "$START_TIMEOUT_S" "$RABBIT_BIN/rabbitmqctl" -n "$NODE" \
      wait --timeout "$START_TIMEOUT_S" "$DIR/beam.pid" >&2; then
    log "node did not start within ${START_TIMEOUT_S}s; last lines of" \
      "$DIR/log/startup.out:"
    tail -n 20 "$DIR/log/startup.out" >&2 || true
    stop_node
    exit 1
  fi
  log "node $NODE up (pid $(beam_pid))"
  echo "$URL"
}

stop_node() {
  local pid
  if pid=$(beam_pid); then
    log "stopping $NODE (pid $pid)"
    timeout "$STOP_TIMEOUT_S" "$RABBIT_BIN/rabbitmqctl" -n "$NODE" stop \
      >&2 2>/dev/null || true
    # Still there: the CLI could not reach it. Its PID is ours to end.
    for _ in $(seq 1 "$STOP_TIMEOUT_S"); do
      [[ -d /proc/$pid ]] || break
      sleep 1
    done
    if [[ -d /proc/$pid ]]; then
      log "node $pid ignored stop; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  else
    log "node $NODE is not running"
  fi
  rm -f "$DIR/beam.pid"
  # The epmd on our private port came up with our node; with no node left
  # registered, `-kill` ends it (and refuses while any node remains).
  if command -v epmd >/dev/null; then
    epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
  fi
}

case ${1:-start} in
  start) start ;;
  stop) setup_env; stop_node ;;
  pid) setup_env; beam_pid || die "node $NODE is not running" ;;
  ctl) setup_env; shift; ctl "$@" ;;
  *) die "usage: $0 [start|stop|pid|ctl ARGS...]" ;;
esac
