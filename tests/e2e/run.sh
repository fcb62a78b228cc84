#!/usr/bin/env bash
# Run the e2e tests with the harness venv; arguments go to pytest.
#   tests/e2e/run.sh                       all tests (steward tests need target/debug/steward or STEWARD_BIN)
#   tests/e2e/run.sh test_harness.py       only the client/server self-tests (no steward needed)
#   STEWARD_BIN=/path/to/steward tests/e2e/run.sh -k proxy
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ ! -x "$here/.venv/bin/pytest" ] || [ ! -d "$here/node_modules/@modelcontextprotocol" ]; then
  "$here/setup.sh"
fi
cd "$here"
exec "$here/.venv/bin/python" -m pytest "$@"
