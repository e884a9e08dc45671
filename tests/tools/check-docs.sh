#!/usr/bin/env bash
# check-docs.sh: the documentation keeps up with the code.
#   - every directive named in src/ac_config.h (the AC_DIR_* strings; "<AgentChatAgent"
#     counts as AgentChatAgent) has a (commented) line in conf/agentchat.conf and a
#     section in docs/configuration.md with Description, Syntax, Default and Context;
#   - every route of the table in src/ac_api.c, with each of its methods, appears in
#     docs/api.md as "METHOD /api/path" (placeholders such as {thread_id} match {}).
# Exits non-zero and names every omission.  Run from anywhere: `make check-docs`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CONFIG_H="$ROOT/src/ac_config.h"
API_C="$ROOT/src/ac_api.c"
CONF="$ROOT/conf/agentchat.conf"
CONF_DOC="$ROOT/docs/configuration.md"
API_DOC="$ROOT/docs/api.md"

problems=0
fail() {
    echo "check-docs: $*" >&2
    problems=$((problems + 1))
}

for f in "$CONFIG_H" "$API_C" "$CONF" "$CONF_DOC" "$API_DOC"; do
    [ -r "$f" ] || { echo "check-docs: cannot read ${f#"$ROOT"/}" >&2; exit 2; }
done

# ---- directives ---------------------------------------------------------------------
mapfile -t directives < <(sed -nE 's/^[[:space:]]*#define[[:space:]]+AC_DIR_[A-Z0-9_]+[[:space:]]+"<?([A-Za-z0-9]+)".*/\1/p' "$CONFIG_H")
if [ "${#directives[@]}" -eq 0 ]; then
    echo "check-docs: found no AC_DIR_* directive names in src/ac_config.h (format changed?)" >&2
    exit 2
fi

for d in "${directives[@]}"; do
    # conf/agentchat.conf: a line that sets it, commented out or not ("#AgentChatX ..." or
    # "#<AgentChatAgent ...>").
    if ! grep -Eq "^[[:space:]]*#?[[:space:]]*<?${d}([[:space:]>]|$)" "$CONF"; then
        fail "$d is missing from conf/agentchat.conf (add a commented example line with its default)"
    fi
    # docs/configuration.md: a heading "### AgentChatX" (or "### `<AgentChatX>`") whose
    # section has the four manual fields.  Lines inside ``` fences are not headings.
    if ! out="$(awk -v d="$d" '
        /^```/ { fence = !fence }
        !fence && /^#+[ \t]/ {
            if (insec) exit
            h = $0
            sub(/^#+[ \t]+/, "", h)
            gsub(/[`<>]/, "", h)
            split(h, w, /[ \t]+/)
            if (w[1] == d) { insec = 1; found = 1 }
            next
        }
        insec {
            if ($0 ~ /Description:/) f["Description"] = 1
            if ($0 ~ /Syntax:/) f["Syntax"] = 1
            if ($0 ~ /Default:/) f["Default"] = 1
            if ($0 ~ /Context:/) f["Context"] = 1
        }
        END {
            if (!found) { print "has no section"; exit 1 }
            missing = ""
            n = split("Description Syntax Default Context", want, " ")
            for (i = 1; i <= n; i++) if (!(want[i] in f)) missing = missing " " want[i] ":"
            if (missing != "") { print "section lacks" missing; exit 1 }
        }' "$CONF_DOC")"; then
        fail "$d: docs/configuration.md $out (want a '### $d' heading followed by Description:, Syntax:, Default:, Context:)"
    fi
done

# ---- routes -------------------------------------------------------------------------
# The table: lines like  {"threads/{}", {{"GET", threads_list}, {"POST", threads_create}}},
# between "static const route_t routes[] = {" and its {NULL ...} terminator.
mapfile -t routes < <(perl -0ne '
    if (/static\s+const\s+route_t\s+routes\[\]\s*=\s*\{(.*?)\{\s*NULL/s) {
        my $t = $1;
        while ($t =~ /\{\s*"([^"]+)"\s*,\s*\{((?:\s*\{\s*"[A-Z]+"\s*,\s*\w+\s*\}\s*,?)+)\s*\}\s*\}/g) {
            my ($pat, $m) = ($1, $2);
            my @methods = $m =~ /"([A-Z]+)"/g;
            print "$_ $pat\n" for @methods;
        }
    }' "$API_C")
if [ "${#routes[@]}" -eq 0 ]; then
    echo "check-docs: found no routes in the table of src/ac_api.c (format changed?)" >&2
    exit 2
fi

for r in "${routes[@]}"; do
    method="${r%% *}"
    pattern="${r#* }"
    # "threads/{}/runs/{}" -> threads/\{[A-Za-z_]+\}/runs/\{[A-Za-z_]+\}
    # shellcheck disable=SC2016  # sed expressions, not shell ones
    re="$(printf '%s' "$pattern" | sed -e 's/[.[\*^$()+?|]/\\&/g' -e 's/{}/\\{[A-Za-z_]+\\}/g')"
    # "METHOD /api/path" or "METHOD, OTHER /api/path" (a heading may name several methods),
    # not followed by more path.
    if ! grep -Eq "(^|[^A-Za-z])${method}([,/ ]+[A-Z]+)*[[:space:]]+\`?/api/${re}([^A-Za-z0-9_/{]|$)" "$API_DOC"; then
        fail "route $method /api/$pattern is not documented in docs/api.md (want a line such as '### $method /api/$(printf '%s' "$pattern" | sed 's/{}/{id}/g')')"
    fi
done

if [ "$problems" -gt 0 ]; then
    echo "check-docs: $problems problem(s); update conf/agentchat.conf and docs/ to match the code" >&2
    exit 1
fi
echo "check-docs: ${#directives[@]} directives and ${#routes[@]} route methods documented"
