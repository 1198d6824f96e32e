#!/usr/bin/env python3
"""Writes kubeconform JSON schemas from a kube-apiserver's OpenAPI v2 document.

    kubectl get --raw /openapi/v2 | python3 e2e/tools/openapi-schemas.py OUT_DIR

One file per kind, OUT_DIR/<kind>-<group>-<version>.json (lowercase kind; the
core API's group is written as its version, as kubeconform names it), for every definition the apiserver serves, including
our CRDs' structural schemas, so the schemas are exactly what the local control
plane validates against. Strict: objects with declared properties reject
unknown ones (except where Kubernetes preserves unknown fields), int-or-string
accepts both.
"""
import json
import os
import sys


def strict(node):
    if isinstance(node, dict):
        if node.get("format") == "int-or-string":
            return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
        out = {k: strict(v) for k, v in node.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [strict(v) for v in node]
    return node


def refs(node, found):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            found.add(ref[len("#/definitions/"):])
        for v in node.values():
            refs(v, found)
    elif isinstance(node, list):
        for v in node:
            refs(v, found)


def closure(name, definitions):
    todo, seen = [name], {}
    while todo:
        n = todo.pop()
        if n in seen or n not in definitions:
            continue
        seen[n] = definitions[n]
        found = set()
        refs(definitions[n], found)
        todo.extend(found - seen.keys())
    return seen


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: openapi-schemas.py OUT_DIR < openapi-v2.json")
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    doc = json.load(sys.stdin)
    definitions = strict(doc["definitions"])
    # References stay inside each file ("#/definitions/<name>"), which holds
    # the kind's definition and everything it references.
    count = 0
    for name, schema in doc["definitions"].items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            # kubeconform's {{ .Group }} of a core kind (apiVersion v1) is "v1".
            kind, version = gvk["kind"].lower(), gvk["version"]
            group = gvk.get("group") or version
            path = os.path.join(out_dir, f"{kind}-{group}-{version}.json")
            needed = closure(name, definitions)
            with open(path, "w") as f:
                json.dump({"$ref": f"#/definitions/{name}", "definitions": needed}, f)
            count += 1
    print(f"[schemas] {count} kinds -> {out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
