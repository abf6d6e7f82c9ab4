"""Side-by-side of wlnode's screening with nomenklatura's logic-v2 on the screening
benchmark's data (issue 25): the synthetic list, or a real one (`--list DIR`). Not a CI test; run through
nomenklatura_side_by_side.sh, which makes the virtualenv and exports the data.

Input: the folder `wlnode bench screen --export DIR` wrote (list.jsonl, queries.jsonl
with wlnode's unthresholded top 10 per query). For logic-v2 every query is compared
with a candidate set: the union of wlnode's top 10 and the 50 entries sharing most
ASCII-folded words with it (so logic-v2 is not limited to wlnode's retrieval).

Per variant class, per script pair and per negative kind it reports, for both:
recall@1 (target ranked first), recall at the matcher's default threshold (wlnode
0.80, logic-v2 0.70, the yente default), the false-positive rate there (negatives with
any result at or above it), and recall at 0, 1 and 2 % false positives. Each of these
false-positive figures is given twice: raw (every negative) and checked (only the
negatives the benchmark's independent judge finds genuinely different from every listed
name: the export's `judge` field is `different`), as `wlnode bench screen` reports
them; the 10 best-scoring checked negatives are listed for each matcher.
"""

import json
import sys
import time
from collections import Counter, defaultdict

from followthemoney import model
from nomenklatura.matching import get_algorithm
from normality import ascii_text

WLNODE_THRESHOLD = 0.80
LOGIC_V2_THRESHOLD = 0.70


def words(name):
    return set(w for w in (ascii_text(name) or "").lower().replace("-", " ").split() if w)


def entity(schema, names, id_):
    e = model.make_entity(schema)
    e.id = id_
    for n in names:
        e.add("name", n)
    return e


def main(folder):
    entries = [json.loads(l) for l in open(f"{folder}/list.jsonl")]
    queries = [json.loads(l) for l in open(f"{folder}/queries.jsonl")]
    by_id = {e["id"]: e for e in entries}
    index = defaultdict(list)
    for e in entries:
        ws = set()
        for n in e["names"]:
            ws |= words(n)
        for w in ws:
            index[w].append(e["id"])
    algo = get_algorithm("logic-v2")
    cfg = algo.default_config()
    ents = {}

    def ent_of(id_):
        if id_ not in ents:
            e = by_id[id_]
            schema = "Person" if e["kind"] == "Person" else "Organization"
            ents[id_] = entity(schema, e["names"], id_)
        return ents[id_]

    results = []  # (query, {matcher: [(id, score)] best first})
    t0 = time.time()
    compares = 0
    for qi, q in enumerate(queries):
        shared = Counter()
        for w in words(q["name"]):
            postings = index.get(w, [])
            if len(postings) > 20000:
                continue
            shared.update(postings)
        cands = {i for i, _ in q["wlnode"]} | {i for i, _ in shared.most_common(50)}
        cands = {c for c in cands if not by_id[c]["withdrawn"]}
        # a fresh id per query: nomenklatura caches what it derives from an entity by id
        qe = entity("LegalEntity", [q["name"]], f"query-{qi}")
        scored = []
        for c in cands:
            scored.append((c, algo.compare(qe, ent_of(c), cfg).score))
            compares += 1
        scored.sort(key=lambda x: -x[1])
        wl = [(i, s) for i, s in q["wlnode"] if not by_id[i]["withdrawn"]]
        results.append((q, {"wlnode": wl, "logic-v2": scored[:10]}))
    elapsed = time.time() - t0

    def groups(q):
        if q["target"] is None:
            return ["negatives", f"negatives_{q['negative']}"]
        if q["variant"] == "acronym":
            # reported on their own, as `wlnode bench screen` does
            return [q["variant"]]
        return [
            "positives",
            q["variant"],
            "across_scripts" if q["across_scripts"] else "same_script",
        ]

    def recall_at_fp(neg_scores, pos):
        neg_scores = sorted(neg_scores, reverse=True)
        at_fp = {}
        for fp in (0.0, 0.01, 0.02):
            k = int(fp * len(neg_scores))
            above = max(neg_scores[k], 0.0) if k < len(neg_scores) else 0.0
            at_fp[f"{fp:.2f}"] = round(sum(1 for s in pos if s > above) / max(len(pos), 1), 4)
        return at_fp

    def name_of(id_):
        names = by_id[id_]["names"]
        return names[0] if names else id_

    report = {}
    for matcher, threshold in (("wlnode", WLNODE_THRESHOLD), ("logic-v2", LOGIC_V2_THRESHOLD)):
        neg_scores = []
        checked = []  # (best score, kind, query, best listed name) of checked negatives
        removed = Counter()
        pos = []  # (target score or -1, rank1)
        per = defaultdict(lambda: {"n": 0, "r1": 0, "at": 0, "fp": 0})
        for q, res in results:
            top = res[matcher]
            best = top[0][1] if top else 0.0
            for g in groups(q):
                per[g]["n"] += 1
            if q["target"] is None:
                neg_scores.append(best)
                if best >= threshold:
                    for g in groups(q):
                        per[g]["fp"] += 1
                verdict = q.get("judge")
                if verdict is None:
                    raise SystemExit("the export has no judge verdicts: re-export with this wlnode")
                if verdict == "different":
                    checked.append((best, q["negative"], q["name"], name_of(top[0][0]) if top else ""))
                else:
                    removed[verdict] += 1
                continue
            ts = next((s for i, s in top if i == q["target"]), -1.0)
            r1 = bool(top) and top[0][0] == q["target"]
            if q["variant"] != "acronym":
                pos.append(ts)
            for g in groups(q):
                per[g]["r1"] += r1
                per[g]["at"] += ts >= threshold
        checked.sort(key=lambda c: -c[0])
        per_kind = defaultdict(lambda: [0, 0])
        for best, kind, _, _ in checked:
            per_kind[kind][0] += 1
            per_kind[kind][1] += best >= threshold
        report[matcher] = {
            "threshold": threshold,
            "recall_at_fp": recall_at_fp(neg_scores, pos),
            "checked": {
                "negatives": len(checked),
                "removed_by_judge": dict(sorted(removed.items())),
                "fp_rate": round(sum(1 for c in checked if c[0] >= threshold) / max(len(checked), 1), 4),
                "fp_rate_per_kind": {
                    k: {"negatives": n, "fp_rate": round(fp / max(n, 1), 4)}
                    for k, (n, fp) in sorted(per_kind.items())
                },
                "recall_at_fp": recall_at_fp([c[0] for c in checked], pos),
                "worst": [[k, q, n, round(s, 4)] for s, k, q, n in checked[:10]],
            },
            "groups": {
                g: (
                    {"queries": v["n"], "fp_rate": round(v["fp"] / v["n"], 4)}
                    if g.startswith("negatives")
                    else {
                        "queries": v["n"],
                        "recall_at_1": round(v["r1"] / v["n"], 4),
                        "recall_at_threshold": round(v["at"] / v["n"], 4),
                    }
                )
                for g, v in sorted(per.items())
            },
        }
    report["logic-v2"]["seconds"] = round(elapsed, 1)
    report["logic-v2"]["compares"] = compares
    json.dump(report, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main(sys.argv[1])
