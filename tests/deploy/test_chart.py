"""The Helm chart (`deploy/helm/ticklane`), checked without a cluster or a helm binary: Helm's
own library (PyPI helm-python-sdk) lints and renders it, every manifest is validated against
the Kubernetes 1.30 schemas, and what the manifests tell the processes (commands, flags,
settings, environment) is checked against ticklane's real command line and settings."""

import copy
import functools
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import typer
import yaml
from pydantic import BaseModel

from ticklane import cli
from ticklane.settings import ExecutorSettings, Settings, load_settings
from ticklane.topics import MARKET_DATA_SCHEMAS

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "ticklane"
PRODUCTION = CHART / "ci" / "production-values.yaml"
CHART_RULES = CHART / "files" / "prometheus-rules.yml"
DEPLOY_RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
CHART_DASHBOARDS = CHART / "files" / "dashboards"
DEPLOY_DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
RELEASE, NAMESPACE = "tl", "trading"
KUBERNETES = "1.30"

Doc = dict[str, Any]
Values = dict[str, Any]

CRD_GROUP = "monitoring.coreos.com/"
WORKLOADS = ("Deployment", "StatefulSet", "Job")
PROCESSES = ("producer", "agents", "executor", "api", "topics")
KAFKA_SECRET, KAFKA_CA_SECRET = "ticklane-kafka", "ticklane-kafka-ca"

# Values that give every secret inline, so the chart creates its own Secrets.
SECRETS = {
    "kafka": "s3cret-sasl-password",
    "databento": "db-s3cret-api-key",
    "ledger": "host=db user=ledger password=s3cret-ledger",
    "api_store": "host=db user=api password=s3cret-api-store",
    "users": '{"users": [{"name": "ann", "password_hash": "s3cret-hash"}]}',
    "tastytrade": "tt-s3cret-refresh-token",
}
INLINE_SECRETS: Values = {
    "kafka": {
        "securityProtocol": "SASL_SSL",
        "saslMechanism": "PLAIN",
        "sasl": {"username": "ticklane", "password": SECRETS["kafka"]},
    },
    "producer": {
        "databento": {"apiKey": SECRETS["databento"]},
        "feeds": [{"name": "f", "dataset": "GLBX.MDP3", "schema": "trades", "symbols": ["ESZ5"]}],
    },
    "executor": {
        "ledger": {"store": "postgres", "postgres": {"dsn": SECRETS["ledger"]}},
        "accounts": [
            {
                "name": "tt",
                "broker": "tastytrade",
                "credentials": {
                    "data": {
                        "TASTYTRADE_CLIENT_SECRET": "tt-s3cret-client",
                        "TASTYTRADE_REFRESH_TOKEN": SECRETS["tastytrade"],
                    }
                },
            }
        ],
    },
    "api": {
        "store": {"type": "postgres", "postgres": {"dsn": SECRETS["api_store"]}},
        "users": {"json": SECRETS["users"]},
    },
}


@functools.cache
def _chart() -> helm_python.Chart:
    return helm_python.Chart.load(str(CHART))


def production_values() -> Values:
    values: Values = yaml.safe_load(PRODUCTION.read_text())
    return values


def render(values: Values) -> list[Doc]:
    """Every manifest of an install with `values`, hooks included."""
    rendered = _chart().render(
        copy.deepcopy(values), name=RELEASE, namespace=NAMESPACE, is_install=True
    )
    docs: list[Doc] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


@functools.cache
def _rendered(which: str) -> str:
    values = production_values() if which == "production" else {}
    return json.dumps(render(values))


def manifests(which: str) -> list[Doc]:
    """The default or production release's manifests (rendered once, copied per test)."""
    docs: list[Doc] = json.loads(_rendered(which))
    return docs


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def component(doc: Doc) -> str:
    labels: dict[str, str] = doc["spec"]["template"]["metadata"]["labels"]
    return labels["app.kubernetes.io/component"]


def workloads(docs: list[Doc], name: str | None = None) -> list[Doc]:
    found = [doc for doc in docs if doc["kind"] in WORKLOADS]
    return [doc for doc in found if name is None or component(doc) == name]


def containers(workload: Doc, *, init: bool = False) -> list[Doc]:
    spec = workload["spec"]["template"]["spec"]
    found: list[Doc] = spec["containers"]
    return found + (spec.get("initContainers", []) if init else [])


def env_of(container: Doc) -> dict[str, Doc]:
    return {item["name"]: item for item in container.get("env", [])}


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


# --- lint and schema validation of every manifest


@pytest.mark.parametrize("which", ["default", "production"])
def test_the_chart_lints_strictly(which: str) -> None:
    values = production_values() if which == "production" else {}
    report = helm_python.lint(
        str(CHART), values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBERNETES}.0"
    )
    # Severity 1 is information ("icon is recommended"); 2 and 3 are warnings and errors.
    findings = [m for m in report["messages"] if m["severity"] >= 2]
    assert (findings, report["errors"]) == ([], [])


def _check_crd(doc: Doc) -> None:
    """ServiceMonitor and PrometheusRule: not in kubernetes-validate's schemas."""
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
    assert doc["metadata"]["name"]
    spec = doc["spec"]
    if doc["kind"] == "ServiceMonitor":
        assert spec["selector"]["matchLabels"]
        assert spec["endpoints"]
        for endpoint in spec["endpoints"]:
            assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}
            assert endpoint["port"]
            assert endpoint["path"].startswith("/")
    elif doc["kind"] == "PrometheusRule":
        assert set(spec) == {"groups"}
        assert isinstance(spec["groups"], list)
        for group in spec["groups"]:
            assert group["name"]
            assert group["rules"]
            for rule in group["rules"]:
                assert rule["expr"]
                assert "alert" in rule or "record" in rule
    else:
        pytest.fail(f"unexpected custom resource {doc['kind']}")


@pytest.mark.parametrize("which", ["default", "production"])
def test_every_manifest_is_valid_kubernetes(which: str) -> None:
    docs = manifests(which)
    assert docs
    for doc in docs:
        if doc["apiVersion"].startswith(CRD_GROUP):
            _check_crd(doc)
        else:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_a_release_with_every_secret_inline_is_valid_kubernetes() -> None:
    for doc in render(INLINE_SECRETS):
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


VARIANTS: dict[str, Values] = {
    "postgres-ledger-without-volumes": {
        "executor": {
            "ledger": {"store": "postgres", "postgres": {"existingSecret": "ledger"}},
            "persistence": {"enabled": False},
        }
    },
    "ca-from-a-configmap-user-from-the-secret": {
        "kafka": {
            "securityProtocol": "SASL_SSL",
            "saslMechanism": "SCRAM-SHA-256",
            "sasl": {"existingSecret": "kafka-credentials"},
            "ca": {"existingConfigMap": "kafka-ca"},
        }
    },
    "only-the-agents": {
        "executor": {"enabled": False},
        "api": {"enabled": False},
        "topics": {"job": {"enabled": False}},
        "serviceAccount": {"create": False, "name": "trading"},
        "image": {"digest": "sha256:" + "ab" * 32},
    },
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_other_releases_are_valid_kubernetes(name: str) -> None:
    docs = render(VARIANTS[name])
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    for workload in workloads(docs):
        for container in containers(workload, init=True):
            assert "@sha256:" in container["image"] or name != "only-the-agents"
            env = env_of(container)
            if name.startswith("ca-from"):
                user = env["TICKLANE_KAFKA__SASL_USERNAME"]["valueFrom"]["secretKeyRef"]
                assert user == {"name": "kafka-credentials", "key": "username", "optional": True}
    if name == "only-the-agents":
        assert {component(w) for w in workloads(docs)} == {"agents"}


# --- the workloads


def test_one_producer_deployment_per_feed_running_produce_live() -> None:
    assert workloads(manifests("default"), "producer") == []
    feeds = production_values()["producer"]["feeds"]
    producers = workloads(manifests("production"), "producer")
    assert [p["kind"] for p in producers] == ["Deployment"] * len(feeds) == ["Deployment"] * 2
    by_feed = {p["metadata"]["labels"]["ticklane/feed"]: p for p in producers}
    assert set(by_feed) == {feed["name"] for feed in feeds}
    for feed in feeds:
        deployment = by_feed[feed["name"]]
        # Two producers of one feed must never run together.
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"]["type"] == "Recreate"
        (container,) = containers(deployment)
        args = container["args"]
        assert args[:2] == ["produce", "live"]
        assert option(args, "--dataset") == feed["dataset"]
        assert option(args, "--schema") == feed["schema"]
        assert option(args, "--symbols") == ",".join(feed["symbols"])
        assert option(args, "--stype-in") == feed["stypeIn"]
        key = env_of(container)["DATABENTO_API_KEY"]["valueFrom"]["secretKeyRef"]
        assert key == {"name": "ticklane-databento", "key": "DATABENTO_API_KEY"}


def test_agents_are_one_statefulset_with_a_volume_per_worker() -> None:
    docs = manifests("production")
    (agents,) = workloads(docs, "agents")
    assert agents["kind"] == "StatefulSet"
    assert agents["spec"]["replicas"] == production_values()["agents"]["replicas"] == 3
    (claim,) = agents["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    (container,) = containers(agents)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["data"] == "/var/lib/ticklane"
    assert "data" not in {v["name"] for v in agents["spec"]["template"]["spec"]["volumes"]}
    # Each worker's RocksDB state lives under its own pod name on its own volume.
    assert option(container["args"], "--worker-id") == "$(POD_NAME)"
    assert env_of(container)["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # Time to finish the frame in hand and close RocksDB on SIGTERM.
    assert agents["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60
    headless = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    assert headless[agents["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"


def test_one_executor_statefulset_of_one_replica_per_account() -> None:
    (default,) = workloads(manifests("default"), "executor")
    assert default["spec"]["replicas"] == 1
    accounts = production_values()["executor"]["accounts"]
    executors = workloads(manifests("production"), "executor")
    assert len(executors) == len(accounts) == 2
    groups, schemas = set(), set()
    for account, executor in zip(accounts, executors, strict=True):
        assert executor["kind"] == "StatefulSet"
        assert executor["spec"]["replicas"] == 1
        assert executor["metadata"]["labels"]["ticklane/account"] == account["name"]
        assert executor["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
        (container,) = containers(executor)
        args = container["args"]
        assert args[0] == "execute"
        assert option(args, "--broker") == account["broker"]
        assert option(args, "--config") == f"/etc/ticklane/config/executor-{account['name']}.toml"
        env = env_of(container)
        assert env["TICKLANE_EXECUTOR__LEDGER__STORE"]["value"] == "postgres"
        dsn = env["TICKLANE_EXECUTOR__LEDGER__POSTGRES_DSN"]["valueFrom"]["secretKeyRef"]
        assert dsn == {"name": "ticklane-ledger", "key": "dsn"}
        groups.add(env["TICKLANE_EXECUTOR__GROUP_ID"]["value"])
        schemas.add(env["TICKLANE_EXECUTOR__LEDGER__POSTGRES_SCHEMA"]["value"])
    # The ledger's lock is per schema, and offsets are per group: never shared by accounts.
    assert len(groups) == len(schemas) == len(accounts)


def _port_told(workload: Doc, container: Doc) -> int:
    """The port the process itself is told to serve its probes on."""
    env, args = env_of(container), container.get("args", [])
    if component(workload) == "executor":
        return int(env["TICKLANE_EXECUTOR__METRICS_PORT"]["value"])
    if component(workload) == "api":
        return int(env["TICKLANE_API__PORT"]["value"])
    return int(option(args, "--metrics-port"))


@pytest.mark.parametrize("which", ["default", "production"])
def test_every_process_is_probed_on_health_and_ready_at_its_own_port(which: str) -> None:
    checked = set()
    for workload in workloads(manifests(which)):
        if workload["kind"] == "Job":
            continue
        for container in containers(workload):
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            told = _port_told(workload, container)
            for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
                get = container[probe]["httpGet"]
                assert get["path"] == path, (workload["metadata"]["name"], probe)
                assert ports[get["port"]] == told, (workload["metadata"]["name"], probe)
            assert container["startupProbe"]["httpGet"]["path"] == "/health"
            checked.add(component(workload))
    expected = {"agents", "executor", "api"} | ({"producer"} if which == "production" else set())
    assert checked == expected


@pytest.mark.parametrize("which", ["default", "production"])
def test_every_container_runs_unprivileged_on_a_read_only_root(which: str) -> None:
    for workload in workloads(manifests(which)):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes["tmp"]
        for container in containers(workload, init=True):
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True
            assert context["runAsUser"] == 10001
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"]
            assert container["resources"]["limits"]
            if container in containers(workload):
                mounts = {m["mountPath"] for m in container["volumeMounts"]}
                assert {"/tmp", "/var/lib/ticklane"} <= mounts  # noqa: S108 - a pod's own emptyDir


@pytest.mark.parametrize("which", ["default", "production"])
def test_every_long_running_workload_has_a_disruption_budget(which: str) -> None:
    docs = manifests(which)
    budgets = [b["spec"]["selector"]["matchLabels"] for b in of_kind(docs, "PodDisruptionBudget")]
    for workload in workloads(docs):
        if workload["kind"] != "Job":
            assert workload["spec"]["selector"]["matchLabels"] in budgets


def test_the_api_has_a_service_and_an_ingress_when_asked() -> None:
    assert of_kind(manifests("default"), "Ingress") == []
    docs = manifests("production")
    (ingress,) = of_kind(docs, "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    api = services[backend["name"]]
    assert api["spec"]["ports"][0]["name"] == backend["port"]["name"] == "http"
    assert api["spec"]["selector"]["app.kubernetes.io/component"] == "api"
    (deployment,) = workloads(docs, "api")
    assert deployment["spec"]["replicas"] == 2
    (container,) = containers(deployment)
    # Served beyond the pod (the Service and probes reach it), not on loopback.
    assert env_of(container)["TICKLANE_API__HOST"]["value"] == "0.0.0.0"  # noqa: S104


# --- Secrets


def test_no_secret_value_reaches_a_configmap() -> None:
    docs = render(INLINE_SECRETS)
    configmaps = json.dumps(of_kind(docs, "ConfigMap"))
    secrets = json.dumps(of_kind(docs, "Secret"))
    for name, value in SECRETS.items():
        assert json.dumps(value)[1:-1] not in configmaps, name
        assert json.dumps(value)[1:-1] in secrets, name
    # Nor into a pod's environment as a literal value.
    for workload in workloads(docs):
        for container in containers(workload, init=True):
            literal = json.dumps([e.get("value") for e in container.get("env", [])])
            assert not any(value in literal for value in SECRETS.values())


def test_existing_secrets_are_used_and_none_is_rendered() -> None:
    docs = manifests("production")
    assert of_kind(docs, "Secret") == []
    referenced: set[str] = set()
    for workload in workloads(docs):
        pod = workload["spec"]["template"]["spec"]
        for container in containers(workload, init=True):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add(ref["name"])
        referenced.update(v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v)
    assert referenced == {
        "ticklane-kafka",
        "ticklane-kafka-ca",
        "ticklane-databento",
        "ticklane-ledger",
        "ticklane-tastytrade",
        "ticklane-schwab",
        "ticklane-schwab-token",
        "ticklane-api-store",
        "ticklane-api-users",
    }


def test_the_chart_holds_an_inline_secret_in_a_secret_of_its_own() -> None:
    docs = render(INLINE_SECRETS)
    names = {s["metadata"]["name"] for s in of_kind(docs, "Secret")}
    prefix = f"{RELEASE}-ticklane-"
    assert {
        f"{prefix}{n}"
        for n in ("kafka", "databento", "ledger", "executor-tt", "api-store", "api-users", "topics")
    } == names
    (executor,) = workloads(docs, "executor")
    env = env_of(containers(executor)[0])
    token = env["TASTYTRADE_REFRESH_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token == {"name": f"{prefix}executor-tt", "key": "TASTYTRADE_REFRESH_TOKEN"}


# --- Kafka


def test_the_kafka_connection_reaches_every_process() -> None:
    values = production_values()["kafka"]
    docs = manifests("production")
    seen = set()
    for workload in workloads(docs):
        pod = workload["spec"]["template"]["spec"]
        ca_volume = {v["name"]: v for v in pod["volumes"]}["kafka-ca"]
        assert ca_volume["secret"]["secretName"] == KAFKA_CA_SECRET
        (container,) = containers(workload)
        env = env_of(container)
        assert env["TICKLANE_KAFKA__BOOTSTRAP_SERVERS"]["value"] == values["bootstrapServers"]
        assert env["TICKLANE_KAFKA__SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        assert env["TICKLANE_KAFKA__SASL_MECHANISM"]["value"] == "SCRAM-SHA-512"
        assert env["TICKLANE_KAFKA__SASL_USERNAME"]["value"] == "ticklane"
        password = env["TICKLANE_KAFKA__SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert password == {"name": KAFKA_SECRET, "key": "password"}
        ca = Path(env["TICKLANE_KAFKA__SSL_CA_LOCATION"]["value"])
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert ca == Path(mounts["kafka-ca"]) / values["ca"]["key"]
        seen.add(component(workload))
    assert seen == set(PROCESSES)


# --- the topic Job


def test_the_topics_job_is_a_hook_that_creates_topics_and_fails_on_drift() -> None:
    docs = manifests("default")
    (job,) = of_kind(docs, "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    (container,) = containers(job)
    assert container["args"][:2] == ["topics", "create"]
    spec = job["spec"]
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    (rule,) = spec["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob"
    assert cli.EXIT_DRIFT in rule["onExitCodes"]["values"]
    # It reads a hook copy of the settings, made before it (the release's own does not
    # exist yet at pre-install) and identical to the release's.
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    configmaps = {c["metadata"]["name"]: c for c in of_kind(docs, "ConfigMap")}
    copy_ = configmaps[volumes["config"]["configMap"]["name"]]
    hook = copy_["metadata"]["annotations"]
    assert hook["helm.sh/hook"] == annotations["helm.sh/hook"]
    assert int(hook["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
    release = configmaps[f"{RELEASE}-ticklane-config"]
    assert copy_["data"]["ticklane.toml"] == release["data"]["ticklane.toml"]


# --- Prometheus Operator


def test_monitoring_resources_only_when_enabled() -> None:
    kinds = {doc["kind"] for doc in manifests("default")}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    docs = manifests("production")
    (monitor,) = of_kind(docs, "ServiceMonitor")
    (rule,) = of_kind(docs, "PrometheusRule")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"]["groups"] == yaml.safe_load(CHART_RULES.read_text())["groups"]
    # Every process's metrics Service is selected, on a port named as the endpoint says.
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = [
        s for s in of_kind(docs, "Service") if selector.items() <= s["metadata"]["labels"].items()
    ]
    assert {s["spec"]["selector"]["app.kubernetes.io/component"] for s in scraped} == {
        "producer",
        "agents",
        "executor",
        "api",
    }
    for service in scraped:
        # The alert rules find ticklane's scrape jobs by name: up{job=~".*ticklane.*"}.
        assert "ticklane" in service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
        assert service["spec"]["publishNotReadyAddresses"] is True
        assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]
    one = of_kind(render({"metrics": {"serviceMonitor": {"enabled": True}}}), "ServiceMonitor")
    assert len(one) == 1


def test_the_charts_alert_rules_and_dashboards_are_deploys() -> None:
    # A chart reads no file outside itself: it carries copies, kept equal (make deploy-files).
    assert CHART_RULES.read_text() == DEPLOY_RULES.read_text(), "make deploy-files"
    chart = {p.name: p.read_text() for p in CHART_DASHBOARDS.glob("*.json")}
    deploy = {p.name: p.read_text() for p in DEPLOY_DASHBOARDS.glob("*.json")}
    assert deploy
    assert chart == deploy, "make deploy-files"


def test_the_grafana_dashboards_configmap_only_when_enabled() -> None:
    def dashboards(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboards")
        ]

    assert dashboards(manifests("default")) == []
    (config_map,) = dashboards(manifests("production"))
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert set(config_map["data"]) == {p.name for p in DEPLOY_DASHBOARDS.glob("*.json")}
    for name, text in config_map["data"].items():
        assert json.loads(text)["uid"], name


# --- what the processes are told is what ticklane understands


@pytest.fixture(scope="module")
def ticklane_command() -> Any:
    """The `ticklane` command line as the console script builds it (typer's own click)."""
    if not any(group.name == "produce" for group in cli.app.registered_groups):
        cli._add_process_commands()
    return typer.main.get_command(cli.app)


def _parse(command: Any, args: list[str]) -> Any:
    """Resolve and parse `ticklane ARGS` as the real command line does, without running it:
    an unknown command or option, or a value of the wrong type, raises."""
    parent, rest, name = None, list(args), "ticklane"
    while hasattr(command, "list_commands"):  # a group: descend to the subcommand
        parent = command.context_class(command, info_name=name, parent=parent)
        name = rest.pop(0)
        sub = command.get_command(parent, name)
        assert sub is not None, f"ticklane has no command {name!r} ({args})"
        command = sub
    return command.make_context(name, rest, parent=parent)


@pytest.mark.parametrize("which", ["default", "production", "inline"])
def test_every_command_line_is_one_ticklane_accepts(which: str, ticklane_command: Any) -> None:
    docs = render(INLINE_SECRETS) if which == "inline" else manifests(which)
    for workload in workloads(docs):
        for container in containers(workload):
            assert "command" not in container  # the image's entry point, `ticklane`
            context = _parse(ticklane_command, container["args"])
            assert context.params["config"] is not None


def _settings_field(path: list[str]) -> bool:
    model: type[BaseModel] = Settings
    for part in path:
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return part == path[-1]
    return False


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ticklane setting from the environment the tests run in."""
    for name in list(os.environ):
        if name.startswith("TICKLANE_") or name == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize("which", ["default", "production", "inline"])
def test_every_process_loads_its_settings(
    which: str, clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    docs = render(INLINE_SECRETS) if which == "inline" else manifests(which)
    configmaps = {c["metadata"]["name"]: c["data"] for c in of_kind(docs, "ConfigMap")}
    for workload in workloads(docs):
        pod = workload["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in containers(workload):
            config = Path(option(container["args"], "--config"))
            mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["config"]
            assert config.parent == Path(mount)
            data = configmaps[volumes["config"]["configMap"]["name"]]
            file = tmp_path / f"{workload['metadata']['name']}.toml"
            file.write_text(data[config.name])
            with pytest.MonkeyPatch.context() as env:
                for item in container["env"]:
                    name = item["name"]
                    if name.startswith("TICKLANE_") and name != "TICKLANE_HEALTH_PORT":
                        # A top-level name ticklane does not know would be ignored silently.
                        parts = name.removeprefix("TICKLANE_").lower().split("__")
                        assert _settings_field(parts), f"{name} is no ticklane setting"
                    env.setenv(name, item.get("value", "from-a-secret"))
                settings = load_settings(file)
            kafka_env = env_of(container)["TICKLANE_KAFKA__BOOTSTRAP_SERVERS"]["value"]
            assert settings.kafka.bootstrap_servers == kafka_env
            assert str(settings.data_dir) == "/var/lib/ticklane"
            if which != "inline":
                # YAML numbers pass through floats in Helm: they must arrive as integers.
                params = settings.agents.strategies[0].params
                assert params["fast"] == 12
                assert type(params["fast"]) is int
            if component(workload) == "executor":
                assert settings.executor.metrics_port == _port_told(workload, container)
                if which == "production":
                    assert settings.executor.symbols  # the account's own routing


# --- values.schema.json


@pytest.mark.parametrize(
    ("values", "names"),
    [
        pytest.param({"kafka": {"securityProtocol": "SASL"}}, "/kafka/securityProtocol", id="enum"),
        pytest.param({"agents": {"replicas": -1}}, "/agents/replicas", id="negative-replicas"),
        pytest.param({"replica": 3}, "'replica'", id="unknown-top-level-key"),
        pytest.param({"executor": {"ledgr": {}}}, "'ledgr'", id="unknown-section-key"),
        pytest.param({"producer": {"metricsPort": "9100"}}, "/producer/metricsPort", id="type"),
        pytest.param(
            {"producer": {"feeds": [{"name": "f", "dataset": "GLBX.MDP3", "schema": "trades"}]}},
            "'symbols'",
            id="missing-required",
        ),
        pytest.param({"image": {"tag": "v1:latest"}}, "/image/tag", id="image-tag"),
        pytest.param(
            {"kafka": {"securityProtocol": "SASL_SSL"}}, "/kafka/saslMechanism", id="sasl-mechanism"
        ),
        pytest.param(
            {"kafka": {"bootstrapServers": "kafka"}}, "/kafka/bootstrapServers", id="host-port"
        ),
        pytest.param({"config": {"data_dir": "/x"}}, "'data_dir'", id="chart-owned-setting"),
        pytest.param(
            {"config": {"topics": {"partitions": 0}}}, "/config/topics/partitions", id="range"
        ),
        pytest.param(
            {"executor": {"accounts": [{"name": "Main_Acct", "broker": "paper"}]}},
            "/executor/accounts/0/name",
            id="account-name",
        ),
        pytest.param(
            {"executor": {"accounts": [{"name": "a", "broker": "ibkr"}]}},
            "/executor/accounts/0/broker",
            id="broker",
        ),
    ],
)
def test_the_schema_rejects_a_bad_value_naming_it(values: Values, names: str) -> None:
    with pytest.raises(helm_python.HelmValuesError) as error:
        _chart().validate_schema(values)
    assert names in str(error.value)


def test_the_schema_accepts_the_defaults_and_production_values() -> None:
    _chart().validate_schema({})
    _chart().validate_schema(production_values())


@pytest.mark.parametrize(
    ("values", "names"),
    [
        pytest.param(
            {"executor": {"accounts": [{"name": "a", "broker": "paper"}] * 2}},
            'executor.accounts: the name "a" is used twice',
            id="account-twice",
        ),
        pytest.param(
            {
                "executor": {
                    "accounts": [
                        {"name": "a", "broker": "paper", "ledgerSchema": "books"},
                        {"name": "b", "broker": "paper", "ledgerSchema": "books"},
                    ]
                }
            },
            "executor.accounts[b].ledgerSchema",
            id="ledger-shared",
        ),
        pytest.param(
            {"kafka": {"securityProtocol": "SASL_SSL", "saslMechanism": "PLAIN"}},
            "kafka.sasl",
            id="sasl-without-password",
        ),
        pytest.param(
            {"executor": {"accounts": [{"name": "a", "broker": "paper", "dryRun": True}]}},
            "executor.accounts[a].dryRun",
            id="dry-run-on-paper",
        ),
        pytest.param(
            {"executor": {"accounts": [{"name": "a", "broker": "tastytrade"}]}},
            "executor.accounts[a].credentials",
            id="broker-without-credentials",
        ),
        pytest.param(
            {"producer": {"feeds": INLINE_SECRETS["producer"]["feeds"]}},
            "producer.databento",
            id="feed-without-key",
        ),
        pytest.param(
            {"executor": {"ledger": {"store": "postgres"}}},
            "executor.ledger.postgres",
            id="postgres-without-dsn",
        ),
    ],
)
def test_values_the_schema_cannot_judge_fail_the_render_naming_them(
    values: Values, names: str
) -> None:
    with pytest.raises(helm_python.HelmRenderError) as error:
        render(values)
    assert names in str(error.value)


def _schema_models(schema: Doc, model: type[BaseModel], where: str) -> Iterator[str]:
    """Every property of `schema` that is not a field of `model`, recursively."""
    definitions = json.loads((CHART / "values.schema.json").read_text())["definitions"]
    if "$ref" in schema:
        schema = definitions[schema["$ref"].rsplit("/", 1)[1]]
    for name, sub in schema.get("properties", {}).items():
        field = model.model_fields.get(name)
        if field is None:
            yield f"{where}.{name}"
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _schema_models(sub, annotation, f"{where}.{name}")


def test_the_schemas_settings_are_ticklanes_settings() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert list(_schema_models(schema["properties"]["config"], Settings, "config")) == []
    account = schema["definitions"]["executorConfig"]
    assert list(_schema_models(account, ExecutorSettings, "executorConfig")) == []
    feed = schema["properties"]["producer"]["properties"]["feeds"]["items"]
    assert feed["properties"]["schema"]["enum"] == list(MARKET_DATA_SCHEMAS)


# --- the README


# Documented whole: Kubernetes objects, and the settings file (documented by ticklane's README).
WHOLE_VALUES = {"config", "resources", "podSecurityContext", "securityContext"}


def _value_paths(values: Values, prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in WHOLE_VALUES:
            yield from _value_paths(value, f"{path}.")
        else:
            yield path


def test_the_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, re.MULTILINE))
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(_value_paths(values)) - documented == set()


def test_agents_get_the_databento_key_only_when_asked_for_warm_up() -> None:
    (plain,) = workloads(manifests("production"), "agents")
    (container,) = containers(plain)
    assert "DATABENTO_API_KEY" not in env_of(container)
    values = production_values()
    values["agents"]["databentoKey"] = True
    values["config"]["agents"]["warmup_dataset"] = "GLBX.MDP3"
    (agents,) = workloads(render(values), "agents")
    (container,) = containers(agents)
    ref = env_of(container)["DATABENTO_API_KEY"]["valueFrom"]["secretKeyRef"]
    (producer, *_) = workloads(render(values), "producer")
    (feed,) = containers(producer)
    assert ref == env_of(feed)["DATABENTO_API_KEY"]["valueFrom"]["secretKeyRef"]
