#!/usr/bin/env bash
# Validates k8s/ offline: every manifest against the Kubernetes OpenAPI schemas
# (kubernetes-validate, strict: unknown fields are errors) for the oldest version the
# manifests need (1.27: CronJob timeZone) and the newest the validator knows, then what
# `kubectl kustomize` renders for both variants. No cluster is contacted. Exit non-zero on any
# failure. Not part of scripts/test.sh.
#   bash scripts/check-k8s.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "installing kubernetes-validate (pip)"
  python3 -m pip install --quiet kubernetes-validate
fi
oldest=1.27.0
newest=$(kubernetes-validate --version | awk '{print $NF}')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

# Kustomization files are kustomize's, not the API server's: the validator has no schema for
# them; they are checked by rendering them below.
mapfile -t manifests < <(find k8s -name '*.yaml' ! -name kustomization.yaml | sort)
for version in "$oldest" "$newest"; do
  echo "== manifests against Kubernetes $version"
  kubernetes-validate --strict -k "$version" "${manifests[@]}" || fail=1
done

if command -v kubectl >/dev/null 2>&1; then
  for variant in k8s k8s/daemon; do
    out="$work/$(basename "$variant").yaml"
    echo "== kubectl kustomize $variant"
    if kubectl kustomize "$variant" >"$out"; then
      grep -E '^kind:' "$out" | sed 's/^/  renders /'
      for version in "$oldest" "$newest"; do
        kubernetes-validate --strict -k "$version" "$out" || fail=1
      done
    else
      fail=1
    fi
  done
else
  echo "== kubectl not installed: kustomization.yaml files not rendered (skipped)"
fi

if [ "$fail" = 0 ]; then
  echo "check-k8s: OK"
else
  echo "check-k8s: FAILED" >&2
  exit 1
fi
