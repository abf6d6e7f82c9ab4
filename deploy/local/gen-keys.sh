#!/usr/bin/env bash
# Generates everything secret or signed that the example federation needs, with the
# same commands an operator and a roster authority would use:
#
#   wlnode roster init     the roster authority's key and an unsigned roster
#   wlnode init            per agency: agency signing key, encryption key (sealed
#                          messages), node (libp2p) key, API token
#   wlnode roster add-member / sign / verify
#
# and copies each agency's example node.toml next to its keys, with
# `roster_authorities = []` replaced by the generated authority key (pinned, no trust
# on first use). Nothing it writes is committed (see .gitignore).
#
# Usage: gen-keys.sh [--configs DIR] [--out DIR] [--federation NAME] [--force]
#   --configs DIR     folder with aa-export/ bb-customs/ cc-trade/ zz-audit/ node.toml
#                     examples (default: this folder; deploy/container uses its own)
#   --out DIR         where to generate (default: generated/ in this folder)
#   --federation NAME federation name in the roster (default: local-demo)
#   --force           delete an earlier generated folder first (including node data)
# Environment: WLNODE, the wlnode binary (default: wlnode on PATH).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WLNODE="${WLNODE:-wlnode}"
CONFIGS="$HERE"
OUT="$HERE/generated"
FEDERATION="local-demo"
FORCE=0
MARKER=".wlnode-generated"

# agency code | folder | country | role | groups (comma-separated) | name
AGENCIES=(
  "AA-EXPORT|aa-export|XA|member|eu,wassenaar|Export Control Office of XA (fictional)"
  "BB-CUSTOMS|bb-customs|XB|member|eu|Customs Authority of XB (fictional)"
  "CC-TRADE|cc-trade|XC|member|wassenaar|Ministry of Trade of XC, export control unit (fictional)"
  "ZZ-AUDIT|zz-audit|XZ|auditor||Regional watchlist auditor (fictional)"
)

die() {
  echo "gen-keys.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '/^# Usage:/,/^# Environment:/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case "$1" in
    --configs) [ $# -ge 2 ] || die "--configs needs a folder"; CONFIGS="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a folder"; OUT="$2"; shift 2 ;;
    --federation) [ $# -ge 2 ] || die "--federation needs a name"; FEDERATION="$2"; shift 2 ;;
    --force) FORCE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

if ! command -v "$WLNODE" >/dev/null 2>&1; then
  die "cannot run '$WLNODE'; install wlnode or set WLNODE=/path/to/wlnode"
fi
CONFIGS="$(cd "$CONFIGS" && pwd)" || die "no such folder: $CONFIGS"

# Reads one string field of the JSON objects `wlnode ... --json` prints (one key per line).
json_field() {
  sed -n "s/^ *\"$1\": *\"\\([^\"]*\\)\".*/\\1/p"
}

# Refuse to clobber anything we did not generate.
if [ -e "$OUT" ]; then
  if [ -e "$OUT/$MARKER" ]; then
    [ "$FORCE" = 1 ] || die "$OUT was generated before; use --force to delete it (keys and node data) and start over"
    rm -rf -- "$OUT"
  elif [ -n "$(ls -A -- "$OUT")" ]; then
    die "$OUT exists and was not made by gen-keys.sh; refusing to touch it"
  fi
fi
mkdir -p -- "$OUT"
chmod 700 -- "$OUT"
: >"$OUT/$MARKER"
OUT="$(cd "$OUT" && pwd)"

# Roster authority (in a real federation: the regional body, on its own machine).
ROSTER="$OUT/roster.toml"
out="$("$WLNODE" roster init --federation "$FEDERATION" \
  --authority-key "$OUT/authority.key" --out "$ROSTER" \
  --authority-name "Regional roster authority (fictional)" --json)" ||
  die "wlnode roster init failed"
AUTHORITY="$(json_field authority_key <<<"$out")"
[ -n "$AUTHORITY" ] || die "wlnode roster init printed no authority key"

# Keys made valid an hour ago, so that records signed right after start-up verify
# everywhere even if clocks differ a little (GNU date; otherwise: now).
VALID_FROM=()
if since="$(date -u -d '1 hour ago' +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)"; then
  VALID_FROM=(--valid-from "$since")
fi

for spec in "${AGENCIES[@]}"; do
  IFS='|' read -r agency dir country role groups name <<<"$spec"
  src="$CONFIGS/$dir/node.toml"
  [ -f "$src" ] || die "missing example config $src"
  # The agency's side: keys and token, created 0600 by wlnode itself.
  out="$("$WLNODE" init --agency "$agency" --dir "$OUT/$dir" --json)" || die "wlnode init failed for $agency"
  signing_key="$(json_field signing_key <<<"$out")"
  peer_id="$(json_field peer_id <<<"$out")"
  encryption_key="$(json_field encryption_key <<<"$out")"
  if [ -z "$signing_key" ] || [ -z "$peer_id" ] || [ -z "$encryption_key" ]; then
    die "wlnode init printed no key for $agency"
  fi
  # Members receive sealed messages (consultations, notices): the roster lists their
  # encryption key. An auditor receives none.
  enc_args=()
  [ "$role" = member ] && enc_args=(--encryption-key "$encryption_key")
  # Replace the generic template with the example config, authority pinned.
  pins="$(grep -c '^roster_authorities = \[\]$' "$src" || true)"
  [ "$pins" = 1 ] || die "$src must contain exactly one line 'roster_authorities = []'"
  sed "s|^roster_authorities = \\[\\]\$|roster_authorities = [\"$AUTHORITY\"]|" "$src" >"$OUT/$dir/node.toml.tmp"
  mv -f -- "$OUT/$dir/node.toml.tmp" "$OUT/$dir/node.toml"
  # The roster authority's side: list the agency with its key and node.
  group_args=()
  IFS=',' read -r -a group_list <<<"$groups"
  for g in "${group_list[@]}"; do
    [ -n "$g" ] && group_args+=(--group "$g")
  done
  if ! err="$("$WLNODE" roster add-member --roster "$ROSTER" --agency "$agency" \
    --name "$name" --country "$country" --role "$role" --signing-key "$signing_key" \
    --node-id "$peer_id" ${group_args[@]+"${group_args[@]}"} ${enc_args[@]+"${enc_args[@]}"} \
    ${VALID_FROM[@]+"${VALID_FROM[@]}"} 2>&1 >/dev/null)"; then
    die "adding $agency to the roster failed: $err"
  fi
  echo "$agency: $role in [${groups}], node $peer_id, config $OUT/$dir/node.toml"
done

"$WLNODE" roster sign --roster "$ROSTER" --authority-key "$OUT/authority.key" >/dev/null ||
  die "wlnode roster sign failed"
"$WLNODE" roster verify --roster "$ROSTER" --authority "$AUTHORITY" >/dev/null ||
  die "the signed roster does not verify"
echo "roster $ROSTER signed by $AUTHORITY (signature ${ROSTER}.sig)"
echo "authority key $OUT/authority.key: keep it offline in a real federation"
