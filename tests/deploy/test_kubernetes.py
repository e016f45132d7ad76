"""The Kubernetes manifests: every document valid against Kubernetes' own OpenAPI
schemas (kubernetes-validate, strict: unknown fields refused), in the base and in
the rendered production overlay, and wired together as the processes need."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from chat_service.settings import ChatSettings
from gateway.settings import GatewaySettings
from meeting_service.settings import MeetingSettings
from tests.deploy.helpers import ROOT, dockerfile
from tests.deploy.kustomize import build

K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
# The oldest Kubernetes still maintained when this was written, and the newest known.
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())
PROCESSES = {
    "rooms-gateway": ("gateway", GatewaySettings),
    "rooms-chat": ("chat", ChatSettings),
    "rooms-meeting": ("meeting", MeetingSettings),
}
Doc = dict[str, Any]


def _files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


def _rendered() -> dict[str, list[Doc]]:
    return {"base": build(BASE), "production": build(PRODUCTION)}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_document_is_valid_kubernetes(version):
    checked = 0
    for docs in _rendered().values():
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)
            checked += 1
    # Base and overlay: 13 and 14 (its Namespace) objects. The overlay's patches
    # are partial objects, checked as part of what they render into.
    assert checked == 27
    # The validator refuses what Kubernetes refuses.
    wrong = copy.deepcopy(_kind(build(BASE), "Deployment", "rooms-gateway"))
    wrong["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, version, strict=True)
    wrong = copy.deepcopy(_kind(build(BASE), "PodDisruptionBudget", "rooms-chat"))
    wrong["spec"]["minAvailable"] = [1]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, version, strict=True)


def _kind(docs: list[Doc], kind: str, name: str) -> Doc:
    [doc] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _env(container: Doc) -> dict[str, Doc]:
    return {item["name"]: item for item in container.get("env", [])}


def test_the_overlay_renders_into_its_namespace_with_released_images():
    docs = build(PRODUCTION)
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    expected = [("Ingress", "rooms"), ("Namespace", "rooms")]
    for name in PROCESSES:
        for kind in ("Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"):
            expected.append((kind, name))
    assert kinds == sorted(expected)
    namespace = _kind(docs, "Namespace", "rooms")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert all(d["metadata"].get("namespace") == "rooms" for d in docs if d["kind"] != "Namespace")
    for name in PROCESSES:
        [container] = _kind(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"]
        assert re.fullmatch(r"registry\.example\.com/rooms/\w+:\d+\.\d+\.\d+", container["image"])
    gateway = _kind(docs, "Deployment", "rooms-gateway")["spec"]["template"]["spec"]
    # A patch changes what it names and keeps the rest.
    [container] = gateway["containers"]
    assert _env(container)["LOG_LEVEL"]["value"] == "WARNING"
    assert _env(container)["CHAT_URL"]["value"] == "http://rooms-chat:8080"
    assert container["resources"]["requests"]["cpu"] == "1"
    assert _kind(docs, "HorizontalPodAutoscaler", "rooms-gateway")["spec"]["minReplicas"] == 3


@pytest.mark.parametrize("variant", ["base", "production"])
def test_each_process_is_a_deployment_service_pdb_and_hpa_that_fit_together(variant):
    docs = _rendered()[variant]
    [user] = [s.arguments for s in dockerfile() if s.keyword == "USER"]
    uid, gid = (int(part) for part in user.split(":"))
    for name, (container_name, settings_type) in PROCESSES.items():
        deployment = _kind(docs, "Deployment", name)
        pod = deployment["spec"]["template"]
        labels = pod["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()
        assert "replicas" not in deployment["spec"]  # the HPA owns it
        service = _kind(docs, "Service", name)
        assert service["spec"]["selector"] == selector
        assert _kind(docs, "PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"] == (
            selector
        )
        hpa = _kind(docs, "HorizontalPodAutoscaler", name)["spec"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        pdb = _kind(docs, "PodDisruptionBudget", name)["spec"]
        assert pdb["minAvailable"] < hpa["minReplicas"]  # a node can always be drained

        spec = pod["spec"]
        [container] = spec["containers"]
        assert container["name"] == container_name
        env = _env(container)
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports == {
            "http": int(env["PORT"]["value"]),
            "metrics": int(env["METRICS_PORT"]["value"]),
        }
        assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]} == {
            "http": "http",
            "metrics": "metrics",
        }
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(ports["metrics"])
        # Probes: alive on /healthz, in rotation on /readyz.
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        # /readyz's own checks give up after 3 s: the probe waits longer than that.
        assert container["readinessProbe"]["timeoutSeconds"] > 3
        # Security: the image's numeric user, nothing more than it needs.
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["runAsGroup"]) == (
            uid,
            gid,
        )
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        resources = container["resources"]
        assert set(resources["requests"]) == {"cpu", "memory"}
        assert "memory" in resources["limits"]
        # Shutdown: the endpoints drop the pod, then the process's own grace runs out,
        # all before the kubelet's SIGKILL.
        pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop[0] == "sleep"
        grace = float(env["SHUTDOWN_GRACE_S"]["value"])
        assert spec["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + grace + 2
        # Every variable is one the process reads (no typo is silently ignored), and
        # DATABASE_URL is built from variables defined before it.
        fields = {field.upper() for field in settings_type.model_fields}
        assert set(env) - {"DB_USER", "DB_PASSWORD"} <= fields, set(env) - fields
        names = [item["name"] for item in container["env"]]
        assert names.index("DB_USER") < names.index("DATABASE_URL")
        assert names.index("DB_PASSWORD") < names.index("DATABASE_URL")
        assert env["DATABASE_URL"]["value"].startswith("postgresql://$(DB_USER):$(DB_PASSWORD)@")
        assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"rooms-db-{name[6:]}"


def _service_url(docs: list[Doc], url: str) -> None:
    match = re.fullmatch(r"http://([a-z-]+):(\d+)(/.*)?", url)
    assert match, url
    service = _kind(docs, "Service", match.group(1))
    assert int(match.group(2)) in [port["port"] for port in service["spec"]["ports"]]


def test_the_processes_find_each_other_and_the_signing_key():
    docs = build(PRODUCTION)
    gateway_pod = _kind(docs, "Deployment", "rooms-gateway")["spec"]["template"]["spec"]
    [gateway] = gateway_pod["containers"]
    env = _env(gateway)
    _service_url(docs, env["CHAT_URL"]["value"])
    _service_url(docs, env["MEETING_URL"]["value"])
    for name in ("rooms-chat", "rooms-meeting"):
        [container] = _kind(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"]
        jwks = _env(container)["JWKS_URL"]["value"]
        assert jwks.endswith("/.well-known/jwks.json")
        _service_url(docs, jwks)
        assert "volumes" not in _kind(docs, "Deployment", name)["spec"]["template"]["spec"] or all(
            "secret" not in v
            for v in _kind(docs, "Deployment", name)["spec"]["template"]["spec"]["volumes"]
        )
    # The signing key: a Secret mounted where JWT_PRIVATE_KEY_FILE points, readable
    # by the pod's group (fsGroup = the image's group) and no one else.
    key_file = Path(env["JWT_PRIVATE_KEY_FILE"]["value"])
    [mount] = [m for m in gateway["volumeMounts"] if m["mountPath"] == str(key_file.parent)]
    assert mount["readOnly"] is True
    [volume] = [v for v in gateway_pod["volumes"] if v["name"] == mount["name"]]
    secret = volume["secret"]
    assert secret["secretName"] == "rooms-jwt-signing-key"
    assert secret["items"] == [{"key": key_file.name, "path": key_file.name}]
    assert secret["defaultMode"] == 0o440
    assert gateway_pod["securityContext"]["fsGroup"] == gateway_pod["securityContext"]["runAsGroup"]


@pytest.mark.parametrize("variant", ["base", "production"])
def test_the_ingress_reaches_the_gateway_only_and_keeps_websockets_open(variant):
    docs = _rendered()[variant]
    [ingress] = [d for d in docs if d["kind"] == "Ingress"]
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends == [{"name": "rooms-gateway", "port": {"name": "http"}}]
    annotations = ingress["metadata"]["annotations"]
    # Idle WebSockets (pinged every 30 s) outlive the proxy's read and send timeouts.
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    if variant == "production":
        hosts = [rule["host"] for rule in ingress["spec"]["rules"]]
        assert ingress["spec"]["tls"][0]["hosts"] == hosts


def test_every_manifest_file_is_in_a_kustomization():
    named = set()
    for kustomization in K8S.rglob("kustomization.yaml"):
        text = kustomization.read_text()
        for path in kustomization.parent.glob("*.yaml"):
            if path.name in text:
                named.add(path)
        named.add(kustomization)
    assert set(_files()) == named
