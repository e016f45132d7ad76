"""`kustomize build` for the subset of kustomize our manifests use: resources
(files and directories), namespace, images, and strategic-merge patches by file.

kustomize itself is a Go binary that neither PyPI nor Debian ships in a
current version, so the tests render with this. A kustomization using any
other field is refused here rather than rendered wrongly. (Checked once by
hand against `kubectl kustomize` 1.32: the same documents.)"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
# Lists merged by key in a strategic-merge patch (Kubernetes' patchMergeKey);
# every other list is replaced whole, as Kubernetes does.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "StorageClass"}


def load_documents(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def build(directory: Path) -> list[Doc]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - SUPPORTED
    assert not unsupported, f"{directory}: not rendered here: {sorted(unsupported)}"
    docs: list[Doc] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        docs.extend(build(path) if path.is_dir() else load_documents(path))
    for patch in kustomization.get("patches", []):
        assert set(patch) == {"path"}, patch
        for change in load_documents(directory / patch["path"]):
            _merge(_find(docs, change), change)
    for image in kustomization.get("images", []):
        for container in _containers(docs):
            name, _, _tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image['newTag']}"
    namespace = kustomization.get("namespace")
    if namespace:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = namespace
    return docs


def _find(docs: list[Doc], change: Doc) -> Doc:
    found = [
        doc
        for doc in docs
        if doc["kind"] == change["kind"]
        and doc["apiVersion"] == change["apiVersion"]
        and doc["metadata"]["name"] == change["metadata"]["name"]
    ]
    assert len(found) == 1, f"the patch's target: {change['kind']}/{change['metadata']['name']}"
    return found[0]


def _merge(target: Doc, change: Doc) -> None:
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        elif isinstance(value, list) and key in MERGE_KEYS and isinstance(target.get(key), list):
            merge_key = MERGE_KEYS[key]
            for item in value:
                same = [t for t in target[key] if t.get(merge_key) == item[merge_key]]
                if same:
                    _merge(same[0], item)
                else:
                    target[key].append(copy.deepcopy(item))
        else:
            target[key] = copy.deepcopy(value)


def _containers(docs: list[Doc]) -> list[Doc]:
    return [
        container
        for doc in docs
        if doc["kind"] == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
    ]
