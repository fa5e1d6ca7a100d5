# shellcheck shell=bash disable=SC2317  # "return || exit": exit is reached only when run instead of sourced
# Source this file (`. compose/local/env.sh`) to get tidemark's environment in the current shell:
#   PATH              Node >= 22.12 first (Node 24 bootstrapped into .tools/node by compose/local/node.sh),
#                     then this checkout's node_modules/.bin (tsc, vitest, biome)
#   TIDEMARK_RUN_DIR  where compose/local/mariadb.sh keeps instance state (default: .run/ of this checkout)
#   TIDEMARK_ROOT     the checkout's root directory
# Safe to source more than once. Changes no shell options; returns non-zero if Node cannot be provided.

if [ -z "${BASH_VERSION:-}" ]; then
  echo "env.sh: source this file from bash" >&2
  return 1 2>/dev/null || exit 1
fi

TIDEMARK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export TIDEMARK_ROOT

if _tidemark_node_bin="$(bash "$TIDEMARK_ROOT/compose/local/node.sh")"; then
  # Put each directory first even if it is already on PATH further back (e.g. after a system Node 20).
  for _tidemark_dir in "$TIDEMARK_ROOT/node_modules/.bin" "$_tidemark_node_bin"; do
    PATH=":$PATH:"
    PATH="${PATH//:$_tidemark_dir:/:}"
    PATH="${PATH#:}"
    PATH="$_tidemark_dir:${PATH%:}"
  done
  export PATH
  unset _tidemark_node_bin _tidemark_dir
else
  unset _tidemark_node_bin
  echo "env.sh: could not provide Node >= 22.12 (see compose/local/node.sh)" >&2
  return 1 2>/dev/null || exit 1
fi

export TIDEMARK_RUN_DIR="${TIDEMARK_RUN_DIR:-$TIDEMARK_ROOT/.run}"
