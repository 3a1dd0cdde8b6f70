#!/usr/bin/env bash
# scan, fix and rollback by hand against a local emulator (moto's server, with each deployment's snapshot), as the README shows.
# Run from the repository after `make demo`, `make test` or `make install-demo`:  bash examples/emulator.sh
# PORT=5001 bash examples/emulator.sh  uses another port.
set -euo pipefail
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
PORT=${PORT:-5000}; E=http://127.0.0.1:$PORT; LOG=$(mktemp); AUDIT=$(mktemp -d)/audit.jsonl
.venv/bin/python -m remediator.local.seed --endpoint-url "$E" --check-free          # a busy port: one line, exit 1
MOTO_ACCOUNT_ID=111122223333 .venv/bin/python -m remediator.local.server -p "$PORT" > "$LOG" 2>&1 & SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT                                          # the server goes when this does
.venv/bin/python -m remediator.local.seed --endpoint-url "$E" --server-log "$LOG" --regions us-east-1,eu-west-1
set +e  # scan and a dry-run fix exit 1 when they find something: that is their answer, not a failure
.venv/bin/apigw-remediator scan --regions us-east-1,eu-west-1 --trusted-accounts 444455556666 --endpoint-url "$E"
.venv/bin/apigw-remediator fix  --regions us-east-1,eu-west-1 --trusted-accounts 444455556666 --endpoint-url "$E"
set -e
.venv/bin/apigw-remediator fix  --regions us-east-1,eu-west-1 --trusted-accounts 444455556666 --endpoint-url "$E" \
    --apply --stages all --audit-log "$AUDIT" || [ $? -eq 1 ]  # 1: report-only findings remain
API=$(.venv/bin/python -c "import json, sys; print(next(r for r in map(json.loads, open(sys.argv[1])) if r.get('kind') != 'intent')['api_id'])" "$AUDIT")
.venv/bin/apigw-remediator rollback --audit-log "$AUDIT" --api-id "$API" --endpoint-url "$E"  # dry run: what it would re-grant
.venv/bin/apigw-remediator rollback --audit-log "$AUDIT" --api-id "$API" --endpoint-url "$E" --apply --force  # re-granting the untrusted takes --force
echo "audit log of this run: $AUDIT"
