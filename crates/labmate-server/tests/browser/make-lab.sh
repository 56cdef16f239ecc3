#!/bin/sh
# A lab as pages.mjs expects it, two servers on it, and their SPEC.json:
#
#   LABMATE=target/debug/labmate crates/labmate-server/tests/browser/make-lab.sh /tmp/weblab
#   LABMATE_PLAYWRIGHT=... node crates/labmate-server/tests/browser/pages.mjs /tmp/weblab/spec.json
#   kill $(cat /tmp/weblab/servers.pid)
#
# The lab (DIR/lab) holds runs a and b (finished), xss (markup in its name,
# tag, config, a metric key that goes NaN, its output), live (running; it
# logs loss = 0.125 once DIR/go exists), notebook entries (one quoting the
# markup, a disputed claim, an amended one), an agent's review item and an
# agent's launch held for approval; steps, whose train/ metrics are defined
# on train/global_step. One server has --user ana, the other
# no user. DIR must be empty, new, or an earlier one of these (it is
# remade).
set -eu
LABMATE=${LABMATE:-labmate}
case $LABMATE in /*) ;; */*) LABMATE=$(pwd)/$LABMATE ;; esac
[ $# -eq 1 ] || { echo "usage: make-lab.sh DIR" >&2; exit 2; }
mkdir -p "$1"
dir=$(cd "$1" && pwd)
if [ -n "$(ls -A "$dir")" ] && [ ! -f "$dir/spec.json" ]; then
  echo "make-lab.sh: $dir holds other files; give it an empty folder" >&2
  exit 2
fi
rm -rf "$dir/lab" "$dir/shots" "$dir/go" "$dir/spec.json" "$dir"/*.url "$dir"/*.err "$dir/readonly-token" "$dir/servers.pid"
mkdir -p "$dir/lab" "$dir/shots"
cd "$dir/lab"
export LABMATE_AUTHOR=ana

$LABMATE init >/dev/null 2>&1
printf '[approval]\ntags = ["big"]\n' > labmate.toml
cat > curve.py <<'EOF'
import sys
k = float(sys.argv[1])
for i in range(200):
    print('##labmate {"step": %d, "loss": %r, "acc": %r}' % (i, k / (i + 1), 1 - k / (i + 2)))
EOF
cat > xss.py <<'EOF'
import json
key = '<img src=x onerror="window.__xss=4">'
print('<img src=x onerror="window.__xss=1"> in the output')
for i in range(20):
    print('##labmate ' + json.dumps({"step": i, key: float("nan") if i >= 10 else 1.0 / (i + 1), "loss": 1.0 / (i + 1)}))
EOF
cat > live.py <<'EOF'
import os, sys, time
go, value = sys.argv[1], float(sys.argv[2])
for i in range(50):
    print('##labmate {"step": %d, "loss": %r}' % (i, 1.0 / (i + 1)), flush=True)
deadline = time.time() + 600
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.05)
print('##labmate {"step": 50, "loss": %r}' % value, flush=True)
time.sleep(2)
EOF

markup='<img src=x onerror="window.__xss=1">'
a=$($LABMATE run --detach --name a --config lr=0.1 --config seed=1 -- python3 curve.py 1.0)
b=$($LABMATE run --detach --name b --config lr=0.01 --config seed=1 -- python3 curve.py 0.5)
xss=$($LABMATE run --detach --name "$markup" --tag '<script>window.__xss=2</script>' \
  --config 'payload=<img src=x onerror="window.__xss=3">' -- python3 xss.py)
$LABMATE wait "$a" "$b" "$xss" >/dev/null 2>&1 || true
printf '{"t":"define","time":1,"metric":"train/*","step_metric":"train/global_step"}\n' > steps.jsonl
for i in $(seq 0 29); do
  printf '{"t":"log","step":%d,"time":%d,"data":{"train/loss":%s,"train/global_step":%d,"val_loss":%s}}\n' \
    "$i" $((1800000000 + i)) "1.0" $((i * 64)) "2.0" >> steps.jsonl
done
steps=$($LABMATE run --detach --name steps -- sh -c 'cat steps.jsonl >> "$LABMATE_RUN_DIR/client-7.jsonl"')
$LABMATE wait "$steps" >/dev/null 2>&1 || true
live=$($LABMATE run --detach --name live -- python3 live.py "$dir/go" 0.125)

$LABMATE note --kind observation --run "$xss" "The run $markup went NaN; loss was {{$a.metrics.loss.last}} on a." >/dev/null
wrong=$($LABMATE note --kind result --run "$b" "$b reached loss 0.9 at the end." 2>/dev/null)
$LABMATE note --kind decision --amends "$wrong" "Correction: b ends lower; keep lr 0.01." >/dev/null
$LABMATE note --kind result --author agent:claude --run "$a" "$a reached loss 0.7." >/dev/null 2>&1
$LABMATE review request --author agent:claude --run "$b" --note "Check b's curve: $markup" >/dev/null 2>&1
# A held launch exits 6 and prints the request's id.
request=$($LABMATE run --author agent:claude --tag big --name big -- python3 curve.py 2.0 2>/dev/null || true)

$LABMATE serve --port 0 --user ana > "$dir/serve.url" 2> "$dir/serve.err" &
echo $! > "$dir/servers.pid"
$LABMATE serve --port 0 --token-file "$dir/readonly-token" > "$dir/readonly.url" 2> "$dir/readonly.err" &
echo $! >> "$dir/servers.pid"
while [ ! -s "$dir/serve.url" ] || [ ! -s "$dir/readonly.url" ]; do
  for pid in $(cat "$dir/servers.pid"); do
    kill -0 "$pid" 2>/dev/null || { echo "make-lab.sh: a server stopped:" >&2; cat "$dir"/*.err >&2; exit 1; }
  done
  sleep 0.1
done

cat > "$dir/spec.json" <<EOF
{"url": "$(head -1 "$dir/serve.url")", "shots": "$dir/shots",
 "runs": {"xss": "$xss", "live": "$live", "a": "$a", "b": "$b", "steps": "$steps"},
 "request": "$request", "go_file": "$dir/go", "live_value": 0.125,
 "readonly_url": "$(head -1 "$dir/readonly.url")"}
EOF
echo "$dir/spec.json"
