#!/usr/bin/env bash
# Try a Recess cluster on one machine: Redis, three nodes and nginx on free
# local ports. Ctrl-C stops everything.
#
#   examples/cluster/run.sh            # builds recess (release) first
#
# Open the printed nginx address in browsers; kill a node (the script prints
# their PIDs) and watch its players come back on another one.
set -euo pipefail
cd "$(dirname "$0")/../.."

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for tool in redis-server nginx python3; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "needs $tool (apt-get install -y redis-server nginx)"; exit 1; }
done

cargo build --release --quiet
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >"$work/redis.log" &
pids+=($!)
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.1; done

upstreams=""
for id in a b c; do
  mkdir -p "$work/$id"
  target/release/recess --redis "redis://127.0.0.1:$redis_port" --node-id "$id" \
    --port 0 --games games --data "$work/$id/data" >"$work/$id/out" 2>"$work/$id/log" &
  pids+=($!)
  until grep -q "recess listening on" "$work/$id/out" 2>/dev/null; do sleep 0.1; done
  addr=$(sed -n 's/^recess listening on http:\/\///p' "$work/$id/out")
  echo "node $id: http://$addr (pid ${pids[-1]}, log $work/$id/log)"
  upstreams+="    server $addr max_fails=1 fail_timeout=2s;\n"
done

nginx_port=$(free_port)
mkdir -p "$work/nginx/logs"
sed -e "s|{{PREFIX}}|$work/nginx|g" -e "s|{{LISTEN}}|127.0.0.1:$nginx_port|" \
    -e "s|{{UPSTREAMS}}|$upstreams|" examples/cluster/nginx.conf.template >"$work/nginx/nginx.conf"
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
echo
echo "Recess cluster ready: http://127.0.0.1:$nginx_port/ (players), http://127.0.0.1:$nginx_port/host (teacher)"
echo "Redis on 127.0.0.1:$redis_port. Ctrl-C to stop."
wait
