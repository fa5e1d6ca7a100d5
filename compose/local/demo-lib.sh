# Steps shared by the demos (demo.sh: MariaDB, demo-postgres.sh: PostgreSQL); sourced, run from the checkout root.

demo_start() { # CONFIG LOG: `tidemark run` in the background (its pid in $tm, killed if the demo exits early)
  cli/tidemark.mjs run -c "$1" &
  tm=$!
  trap 'kill $tm 2>/dev/null || true' EXIT
  sleep 2
  kill -0 "$tm" 2>/dev/null || { echo "tidemark run stopped; see $2"; exit 1; }
}

demo_verify() { # CONFIG LOG REPLICA: `tidemark verify`, then stop tidemark and say how it ended; sets $rc
  set +e
  cli/tidemark.mjs verify -c "$1" --wait-seconds 60
  rc=$?
  set -e
  kill -TERM "$tm" 2>/dev/null || true
  wait "$tm" 2>/dev/null || true
  trap - EXIT
  echo
  if [ "$rc" -eq 0 ]; then
    echo "Demo done: the $3 is EQUAL to the primary."
  else
    echo "Demo FAILED: verify exit code $rc (log: $2)"
  fi
}
