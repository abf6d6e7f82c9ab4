#!/bin/sh
# Side-by-side of wlnode's screening with nomenklatura's logic-v2 (issue 25) on the
# screening benchmark's synthetic data. Not a CI test. Makes a virtualenv with
# nomenklatura from PyPI (in $VENV, default target/nomenklatura-venv), exports the data
# with the release binary (`wlnode bench screen --export`), and prints both matchers'
# figures as JSON. Options after the script name replace the defaults given to
# `wlnode bench screen` (20,000 entries, 1,200 positives, 800 negatives), which keep
# logic-v2's Python loop to a few minutes.
#
# nomenklatura is pinned (NOMENKLATURA_VERSION) and so are its dependencies
# (nomenklatura_constraints.txt, `pip freeze` of the virtualenv it made), so that reruns
# compare the same logic-v2; a virtualenv holding another version is rebuilt.
#
#   node/crates/devtools/scripts/nomenklatura_side_by_side.sh --entries 20000
#   node/crates/devtools/scripts/nomenklatura_side_by_side.sh --list DIR --positives 1400 \
#       --recombined 400 --common 300 --negatives 300   # OFAC's sdn.csv + alt.csv in DIR
set -eu
ROOT=$(cd "$(dirname "$0")/../../../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
VENV=${VENV:-$TARGET/nomenklatura-venv}
OUT=${OUT:-$TARGET/side-by-side}
NOMENKLATURA_VERSION=4.17.4
CONSTRAINTS=$ROOT/node/crates/devtools/scripts/nomenklatura_constraints.txt
if [ -x "$VENV/bin/python" ] &&
    ! "$VENV/bin/pip" show nomenklatura 2>/dev/null | grep -qx "Version: $NOMENKLATURA_VERSION"; then
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --constraint "$CONSTRAINTS" "nomenklatura==$NOMENKLATURA_VERSION"
fi
"$VENV/bin/pip" show nomenklatura | head -2 >&2
cargo build --release -p wlnode --manifest-path "$ROOT/Cargo.toml" >&2
if [ $# -eq 0 ]; then
    set -- --entries 20000 --positives 1200 --negatives 300 --recombined 300 --common 200
fi
"$TARGET/release/wlnode" bench screen "$@" --export "$OUT" >&2
"$VENV/bin/python" "$ROOT/node/crates/devtools/scripts/nomenklatura_side_by_side.py" "$OUT"
