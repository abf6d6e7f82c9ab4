"""Checks wlnode's FollowTheMoney output with the real `followthemoney` package.

Run by node/tests/yente_api.rs with the Python of a virtualenv that has
followthemoney installed (see tests/interop/requirements.txt):

    python ftm_check.py export FILE        # an `export --format ftm` file
    python ftm_check.py api PLAN.json      # a yente-style client against a live node

Every entity must name an FtM schema, use only that schema's properties, pass the
schema's own validation, lose no value when FtM cleans it, and point only at entities
that exist (the export) or are nested (the API). The API plan lists match, search and
entity requests with the entity each must find first. Prints one summary line
("ok ...") and exits 0, or prints every problem and exits 1.
"""

import json
import sys
import urllib.parse

import requests
from followthemoney import model
from followthemoney.exc import InvalidData
from followthemoney.types import registry

# Keys of scored results that are not part of the entity itself (yente's, and
# wlnode's explanation and case-log decision).
SCORE_KEYS = ("score", "match", "features", "explanations", "explanation", "decision")
ENTITY_KEYS = {
    "id", "caption", "schema", "properties", "datasets", "referents", "target",
    "first_seen", "last_seen", "last_change",
}


def flatten(data, out, problems):
    """The entity and every entity nested in its properties (yente's `/entities` shape),
    flat. A nested entity under a forward property becomes its id. One under a reverse
    property (`sanctions`, `ownershipAsset`, ...: stubs FtM does not store) is dropped
    from the parent after checking that the nested entity points back at it."""
    schema = model.get(data.get("schema", ""))
    props = {}
    for name, values in data.get("properties", {}).items():
        prop = schema.get(name) if schema is not None else None
        stub = prop is not None and prop.stub
        kept = []
        for v in values:
            if isinstance(v, dict):
                flatten(v, out, problems)
                if stub:
                    back = v.get("properties", {}).get(prop.reverse.name, [])
                    if data.get("id") not in back:
                        problems.append(
                            f"entity {v.get('id')!r} nested under {name} of {data.get('id')!r} "
                            f"does not point back through {prop.reverse.name}"
                        )
                else:
                    kept.append(v["id"])
            else:
                kept.append(v)
        if kept or not stub:
            props[name] = kept
    flat = dict(data)
    flat["properties"] = props
    out.append(flat)
    return out


def check_entity(data, problems):
    where = f"entity {data.get('id')!r}"
    extra = set(data) - ENTITY_KEYS
    if extra:
        problems.append(f"{where}: keys outside yente's EntityResponse: {sorted(extra)}")
    for key in ("id", "caption", "schema", "properties", "datasets"):
        if key not in data:
            problems.append(f"{where}: missing {key}")
            return
    schema = model.get(data["schema"])
    if schema is None:
        problems.append(f"{where}: {data['schema']!r} is not an FtM schema")
        return
    if schema.abstract:
        problems.append(f"{where}: {schema.name} is an abstract schema")
    for name, values in data["properties"].items():
        prop = schema.get(name)
        if prop is None:
            problems.append(f"{where}: {schema.name} has no property {name!r}")
            continue
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            problems.append(f"{where}: {name} values must be a list of strings")
            continue
        for v in values:
            cleaned = prop.type.clean(v)
            if cleaned is None:
                problems.append(f"{where}: {name}={v!r} is not a valid {prop.type.name}")
            elif prop.type in (registry.date, registry.country, registry.topic) and cleaned != v:
                problems.append(f"{where}: {name}={v!r} cleans to {cleaned!r}")
    try:
        schema.validate(data)
    except InvalidData as e:
        problems.append(f"{where}: FtM validation failed: {e.errors}")
    try:
        proxy = model.get_proxy(data, cleaned=False)
    except InvalidData as e:
        problems.append(f"{where}: FtM refused it: {e}")
        return
    for name, values in data["properties"].items():
        kept = proxy.get(name, quiet=True)
        if len(kept) != len(set(values)):
            problems.append(f"{where}: FtM kept {kept!r} of {name}={values!r}")
    if not proxy.caption:
        problems.append(f"{where}: no caption")


def check_references(entities, problems, known):
    """Entity-typed properties point at entities in `known` (id -> schema name), of a
    schema the property's range admits (an Ownership's asset must be an Asset, ...)."""
    for data in entities:
        schema = model.get(data["schema"])
        if schema is None:
            continue
        for name, values in data["properties"].items():
            prop = schema.get(name)
            if prop is None or prop.type != registry.entity:
                continue
            for v in values:
                if v not in known:
                    problems.append(f"entity {data['id']!r}: {name} -> {v!r} is not in the output")
                    continue
                target = model.get(known[v])
                if prop.range is not None and target is not None and not target.is_a(prop.range):
                    problems.append(
                        f"entity {data['id']!r}: {name} -> {v!r} is a {target.name}, "
                        f"not a {prop.range.name}"
                    )


def check_export(path):
    problems = []
    entities = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entities.append(json.loads(line))
            except ValueError as e:
                problems.append(f"line {n}: not JSON: {e}")
    ids = [e.get("id") for e in entities]
    if len(ids) != len(set(ids)):
        problems.append("duplicate entity ids in the export")
    for e in entities:
        check_entity(e, problems)
    check_references(entities, problems, {e.get("id"): e.get("schema") for e in entities})
    schemata = sorted({e["schema"] for e in entities if "schema" in e})
    return problems, f"ok export: {len(entities)} entities valid ({', '.join(schemata)})"


def check_api(plan_path):
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    base = plan["url"].rstrip("/")
    # yente's clients authenticate with an ApiKey header.
    headers = {"Authorization": f"ApiKey {plan['token']}"}
    problems = []
    checked = 0

    def validate_all(raw, where):
        nonlocal checked
        flat = flatten(raw, [], problems)
        for e in flat:
            check_entity(e, problems)
        checked += len(flat)
        top = flat[-1]
        nested = {e["id"]: e["schema"] for e in flat}
        # References to entities not nested here are other entries: fetch their schema.
        for e in flat:
            schema = model.get(e["schema"])
            for name, values in e["properties"].items():
                prop = schema.get(name) if schema else None
                if prop is not None and prop.type == registry.entity:
                    for v in values:
                        if v in nested:
                            continue
                        if not v.startswith("wl-"):
                            problems.append(f"{where}: {name} -> {v!r} is not an entity id")
                            continue
                        r = requests.get(f"{base}/entities/{urllib.parse.quote(v)}",
                                         params={"nested": "false"}, headers=headers, timeout=60)
                        if r.status_code != 200:
                            problems.append(f"{where}: {name} -> {v!r} answers {r.status_code}")
                            continue
                        nested[v] = r.json()["schema"]
        check_references(flat, problems, nested)
        return top

    queries = {c["key"]: c["query"] for c in plan["match"]}
    resp = requests.post(
        f"{base}/match/default",
        json={"queries": queries},
        headers=headers,
        params={"algorithm": "best"},
        timeout=60,
    )
    if resp.status_code != 200:
        return [f"/match answered {resp.status_code}: {resp.text}"], ""
    body = resp.json()
    for key in ("responses", "limit"):
        if key not in body:
            problems.append(f"/match: no {key!r} in the answer")
    for case in plan["match"]:
        r = body.get("responses", {}).get(case["key"])
        if r is None:
            problems.append(f"/match: no response for {case['key']!r}")
            continue
        for key in ("status", "results", "total", "query"):
            if key not in r:
                problems.append(f"/match {case['key']}: no {key!r}")
        results = r.get("results", [])
        if not results:
            problems.append(f"/match {case['key']}: no results")
            continue
        top = results[0]
        if top.get("id") != case["expect_top"]:
            problems.append(f"/match {case['key']}: top hit {top.get('id')!r}, expected {case['expect_top']!r}")
        if top.get("match") is not True:
            problems.append(f"/match {case['key']}: top hit is not a match: {top.get('score')}")
        if not isinstance(top.get("features"), dict) or not top["features"]:
            problems.append(f"/match {case['key']}: no features")
        scores = [x["score"] for x in results]
        if scores != sorted(scores, reverse=True):
            problems.append(f"/match {case['key']}: results not ordered by score")
        for x in results:
            validate_all({k: v for k, v in x.items() if k not in SCORE_KEYS}, f"/match {case['key']}")
        # The echoed query is an entity example FtM accepts.
        q = r.get("query", {})
        if model.get(q.get("schema", "")) is None:
            problems.append(f"/match {case['key']}: echoed query schema {q.get('schema')!r}")

    for case in plan["search"]:
        resp = requests.get(
            f"{base}/search/default",
            params={"q": case["q"]},
            headers=headers,
            timeout=60,
        )
        if resp.status_code != 200:
            problems.append(f"/search {case['q']!r} answered {resp.status_code}: {resp.text}")
            continue
        body = resp.json()
        results = body.get("results", [])
        for key in ("results", "total", "limit", "offset", "facets"):
            if key not in body:
                problems.append(f"/search: no {key!r}")
        if not results or results[0].get("id") != case["expect_top"]:
            problems.append(f"/search {case['q']!r}: expected {case['expect_top']!r} first, got {[x.get('id') for x in results]}")
        for x in results:
            validate_all(x, f"/search {case['q']!r}")

    for entity_id in plan["entities"]:
        resp = requests.get(
            f"{base}/entities/{urllib.parse.quote(entity_id)}",
            headers=headers,
            timeout=60,
        )
        if resp.status_code != 200:
            problems.append(f"/entities/{entity_id} answered {resp.status_code}: {resp.text}")
            continue
        top = validate_all(resp.json(), f"/entities/{entity_id}")
        if top.get("id") != entity_id:
            problems.append(f"/entities/{entity_id}: answered {top.get('id')!r}")

    summary = (
        f"ok api: {len(plan['match'])} match, {len(plan['search'])} search and "
        f"{len(plan['entities'])} entity requests; {checked} entities valid"
    )
    return problems, summary


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("export", "api"):
        print(__doc__)
        sys.exit(2)
    if sys.argv[1] == "export":
        problems, summary = check_export(sys.argv[2])
    else:
        problems, summary = check_api(sys.argv[2])
    if problems:
        for p in problems:
            print(p)
        sys.exit(1)
    print(summary)


if __name__ == "__main__":
    main()
