"""Unit tests of the CustomResourceDefinitions in crds/ and the samples in manifests/samples/.

No cluster: the generated files are checked against the generator, every schema node against the
rules of a structural schema (what the API server requires before it prunes and defaults), and the
samples against a small validator that does what the API server's OpenAPI validation does
(types, enums, required, bounds, patterns, unknown fields). CEL rules are only checked for shape
here; they are evaluated by a real kube-apiserver in the integration tests.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from lazarus.api.v1alpha1 import (
    BackupTestPolicySpec,
    CleanupSettings,
    ConcurrencyPolicy,
    CostSettings,
    Objectives,
    Phase,
    RestoreSettings,
    RestoreTestSpec,
    SandboxSettings,
    WorkloadSettings,
)
from lazarus.api.v1alpha1.fields import json_defaults

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"
SAMPLES = ROOT / "manifests" / "samples"
GROUP_VERSION = "lazarus.io/v1alpha1"

Schema = dict[str, Any]


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lazarus_crd_generate", CRD_DIR / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _load_generator()


def _load_crds() -> dict[str, Schema]:
    crds = {}
    for path in sorted(CRD_DIR.glob("lazarus.io_*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        crds[crd["spec"]["names"]["kind"]] = crd
    return crds


CRDS = _load_crds()
KINDS = ["LazarusRestoreTest", "BackupTestPolicy"]


def root_schema(kind: str) -> Schema:
    """The openAPIV3Schema of the only version of a CRD."""
    (version,) = CRDS[kind]["spec"]["versions"]
    schema: Schema = version["schema"]["openAPIV3Schema"]
    return schema


def walk(node: Schema, path: str = "", arrays: tuple[Schema, ...] = ()) -> Iterator[
    tuple[str, Schema, bool, tuple[Schema, ...]]
]:
    """Yield (path, node, is_property, enclosing arrays) for every schema node."""
    yield path, node, False, arrays
    for name, child in node.get("properties", {}).items():
        for entry in walk(child, f"{path}.{name}", arrays):
            if entry[1] is child:
                entry = (entry[0], entry[1], True, entry[3])
            yield entry
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}.*", arrays)
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]", (*arrays, node))


def all_nodes() -> Iterator[tuple[str, str, Schema, bool, tuple[Schema, ...]]]:
    for kind in KINDS:
        for path, node, is_property, arrays in walk(root_schema(kind)):
            yield kind, path, node, is_property, arrays


def node_at(kind: str, dotted: str) -> Schema:
    """The schema node at a dotted path such as ``spec.healthChecks.database``."""
    node = root_schema(kind)
    for part in dotted.split("."):
        node = node["items"] if part == "[]" else node["properties"][part]
    return node


# --------------------------------------------------------------------------- a small validator

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def _check_scalar(value: Any, schema: Schema, path: str) -> list[str]:
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} is less than {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} is greater than {schema['maximum']}")
    return errors


def _check_object(value: dict[str, Any], schema: Schema, path: str) -> list[str]:
    errors = [f"{path}.{name}: required" for name in schema.get("required", ())
              if name not in value]
    properties = schema.get("properties")
    extra = schema.get("additionalProperties")
    for name, item in value.items():
        if properties is not None and name in properties:
            errors += validate(item, properties[name], f"{path}.{name}")
        elif isinstance(extra, dict):
            errors += validate(item, extra, f"{path}.{name}")
        elif properties is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
            errors.append(f"{path}.{name}: unknown field")
    return errors


def _check_array(value: list[Any], schema: Schema, path: str) -> list[str]:
    errors = []
    if len(value) < schema.get("minItems", 0):
        errors.append(f"{path}: fewer than {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(f"{path}: more than {schema['maxItems']} items")
    for index, item in enumerate(value):
        errors += validate(item, schema["items"], f"{path}[{index}]")
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set" and len({repr(v) for v in value}) != len(value):
        errors.append(f"{path}: duplicate items in a set")
    if list_type == "map":
        keys = [tuple(repr(i.get(k)) for k in schema["x-kubernetes-list-map-keys"])
                for i in value if isinstance(i, dict)]
        if len(set(keys)) != len(keys):
            errors.append(f"{path}: duplicate keys in a map list")
    return errors


def validate(value: Any, schema: Schema, path: str = "") -> list[str]:
    """Errors of ``value`` against an OpenAPI schema node, as the API server would report them.

    Unknown fields of an object with ``properties`` are errors here (the API server prunes them,
    or rejects them under strict field validation, which is kubectl's default).
    """
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            return [f"{path}: must be an integer or a string"]
        return _check_scalar(value, schema, path)
    type_ = schema["type"]
    if not _TYPES[type_](value):
        return [f"{path}: {value!r} is not of type {type_}"]
    if type_ == "object":
        return _check_object(value, schema, path)
    if type_ == "array":
        return _check_array(value, schema, path)
    return _check_scalar(value, schema, path)


def validate_object(document: Schema) -> list[str]:
    """Errors of a whole custom object against its CRD."""
    kind = document.get("kind")
    if kind not in CRDS or document.get("apiVersion") != GROUP_VERSION:
        return [f"unknown apiVersion/kind {document.get('apiVersion')}/{kind}"]
    body = {k: v for k, v in document.items() if k != "metadata"}
    return validate(body, root_schema(kind))


# --------------------------------------------------------------------------- generated files


def test_generated_files_are_up_to_date() -> None:
    stale = generate.stale_files()
    assert not stale, f"run 'python crds/generate.py': {[p.name for p in stale]}"


def test_generated_files_say_so_and_are_listed_in_kustomization() -> None:
    generated = sorted(path.name for path in generate.outputs())
    for name in generated:
        assert (CRD_DIR / name).read_text().startswith(generate.HEADER)
    kustomization = yaml.safe_load((CRD_DIR / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == generated
    assert sorted(CRDS) == sorted(KINDS)


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    generate.write(tmp_path)
    assert generate.stale_files(tmp_path) == []
    stale = tmp_path / "lazarus.io_backuptestpolicies.yaml"
    stale.write_text(stale.read_text() + "# edited\n")
    assert generate.stale_files(tmp_path) == [stale]


def test_no_yaml_anchors_in_generated_files() -> None:
    for path in generate.outputs():
        assert not re.search(r"[&*]id\d+", path.read_text())


# --------------------------------------------------------------------------- structural schemas

INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]


def test_every_node_has_a_type() -> None:
    for kind, path, node, _, _ in all_nodes():
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, (kind, path)
            assert node.get("anyOf", INT_OR_STRING_ANY_OF) == INT_OR_STRING_ANY_OF, (kind, path)
            continue
        assert node.get("type") in _TYPES, (kind, path)
        for keyword in ("anyOf", "oneOf", "allOf", "not"):
            assert keyword not in node, (kind, path, keyword)


def test_objects_and_arrays_are_well_formed() -> None:
    for kind, path, node, _, _ in all_nodes():
        where = (kind, path)
        assert not ("properties" in node and "additionalProperties" in node), where
        if node.get("type") == "object" and path != ".metadata":
            # Otherwise every field would be pruned.
            assert {"properties", "additionalProperties",
                    "x-kubernetes-preserve-unknown-fields"} & node.keys(), where
        if node.get("type") == "array":
            assert isinstance(node.get("items"), dict), where
        for name in node.get("required", ()):
            assert name in node.get("properties", {}), (*where, name)


def test_root_metadata_is_only_typed() -> None:
    # The API server forbids anything else on metadata (even a description).
    for kind in KINDS:
        assert root_schema(kind)["properties"]["metadata"] == {"type": "object"}


def test_every_default_is_valid() -> None:
    defaults = 0
    for kind, path, node, _, _ in all_nodes():
        if "default" in node:
            defaults += 1
            assert validate(node["default"], node, f"{kind}{path}") == []
    assert defaults > 30


def test_list_types_are_usable() -> None:
    for kind, path, node, _, _ in all_nodes():
        list_type = node.get("x-kubernetes-list-type")
        if list_type == "map":
            items = node["items"]
            for key in node["x-kubernetes-list-map-keys"]:
                assert key in items.get("required", []) or "default" in items["properties"][key], (
                    kind, path, key)
        elif list_type == "set":
            assert node["items"]["type"] in ("string", "integer", "number", "boolean"), (kind, path)


def test_every_field_has_a_description() -> None:
    for kind, path, node, is_property, _ in all_nodes():
        if is_property and path != ".metadata":
            assert node.get("description", "").strip(), (kind, path)


def test_cel_rules_reference_known_fields_and_are_cost_bounded() -> None:
    rules = 0
    for kind, path, node, _, arrays in all_nodes():
        for rule in node.get("x-kubernetes-validations", ()):
            rules += 1
            assert rule.keys() == {"rule", "message"}, (kind, path)
            for field in re.findall(r"\bself\.(\w+)", rule["rule"]):
                assert field in node["properties"], (kind, path, field)
            # An unbounded enclosing list multiplies the rule's estimated cost past the limit.
            for array in arrays:
                assert "maxItems" in array, (kind, path)
    assert rules > 0


# --------------------------------------------------------------------------- shape


@pytest.mark.parametrize(
    ("kind", "plural", "short_name"),
    [("LazarusRestoreTest", "lazarusrestoretests", "lrt"),
     ("BackupTestPolicy", "backuptestpolicies", "btp")],
)
def test_names_scope_and_version(kind: str, plural: str, short_name: str) -> None:
    crd = CRDS[kind]
    assert crd["metadata"]["name"] == f"{plural}.lazarus.io"
    spec = crd["spec"]
    assert spec["group"] == "lazarus.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["plural"] == plural
    assert spec["names"]["singular"] == kind.lower()
    assert spec["names"]["shortNames"] == [short_name]
    assert spec["names"]["categories"] == ["lazarus"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize("kind", KINDS)
def test_printer_columns_point_into_the_schema(kind: str) -> None:
    (version,) = CRDS[kind]["spec"]["versions"]
    columns = version["additionalPrinterColumns"]
    assert columns[-1] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    for column in columns[:-1]:
        node = node_at(kind, column["jsonPath"].lstrip("."))
        expected = {"date": "string", "number": "number", "string": "string",
                    "boolean": "boolean", "integer": "integer"}[column["type"]]
        assert node["type"] == expected, column
        if column["type"] == "date":
            assert node.get("format") == "date-time", column


def test_restore_test_columns() -> None:
    (version,) = CRDS["LazarusRestoreTest"]["spec"]["versions"]
    assert [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]] == [
        ("Backup", ".spec.backupName"),
        ("Phase", ".status.phase"),
        ("RTO", ".status.result.rto"),
        ("Result", ".status.reason"),
        ("Age", ".metadata.creationTimestamp"),
    ]


def test_required_fields() -> None:
    assert node_at("LazarusRestoreTest", "spec")["required"] == ["backupName"]
    assert node_at("BackupTestPolicy", "spec")["required"] == ["template"]
    assert "required" not in node_at("BackupTestPolicy", "spec.template.spec")
    for kind in KINDS:
        assert "required" not in node_at(kind, "status")


def test_single_and_listed_database_checks_share_one_schema() -> None:
    single = copy.deepcopy(node_at("LazarusRestoreTest", "spec.healthChecks.database"))
    listed = copy.deepcopy(node_at("LazarusRestoreTest", "spec.healthChecks.databases.[]"))
    assert listed["required"] == ["name", *single["required"]]
    for node in (single, listed):
        del node["description"], node["required"], node["properties"]["name"]["description"]
    assert single == listed
    databases = node_at("LazarusRestoreTest", "spec.healthChecks.databases")
    assert databases["maxItems"] == 20
    assert databases["x-kubernetes-list-map-keys"] == ["name"]


def test_policy_template_is_the_restore_test_spec_without_the_backup() -> None:
    test_spec = node_at("LazarusRestoreTest", "spec")["properties"]
    template = node_at("BackupTestPolicy", "spec.template.spec")["properties"]
    expected = {k: v for k, v in test_spec.items() if k not in ("backupName", "backupNamespace")}
    assert template == expected


def test_notification_targets_share_one_schema() -> None:
    on_success = copy.deepcopy(node_at("LazarusRestoreTest", "spec.notifications.onSuccess"))
    on_failure = copy.deepcopy(node_at("LazarusRestoreTest", "spec.notifications.onFailure"))
    del on_success["description"], on_failure["description"]
    assert on_success == on_failure


def test_conditions_are_standard() -> None:
    for kind in KINDS:
        conditions = node_at(kind, "status.conditions")
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        item = conditions["items"]
        assert set(item["required"]) == {"type", "status", "lastTransitionTime", "reason",
                                         "message"}
        assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("spec", RestoreTestSpec),
        ("spec.restore", RestoreSettings),
        ("spec.sandbox", SandboxSettings),
        ("spec.workloads", WorkloadSettings),
        ("spec.cleanup", CleanupSettings),
        ("spec.objectives", Objectives),
        ("spec.cost", CostSettings),
        ("BackupTestPolicy:spec", BackupTestPolicySpec),
    ],
)
def test_crd_defaults_are_the_typed_model_s(path: str, model: type) -> None:
    kind, _, path = path.rpartition(":")
    properties = node_at(kind or "LazarusRestoreTest", path)["properties"]
    modelled = {f.metadata["json"] for f in dataclasses.fields(model) if f.metadata["section"] is None}
    in_crd = {key: node["default"] for key, node in properties.items() if key in modelled and "default" in node}
    assert in_crd == json_defaults(model)
    assert modelled <= set(properties)  # the model reads no field the CRD lacks


def test_crd_enums_are_the_model_s() -> None:
    assert node_at("LazarusRestoreTest", "status.phase")["enum"] == [p.value for p in Phase]
    assert node_at("BackupTestPolicy", "spec.concurrencyPolicy")["enum"] == [c.value for c in ConcurrencyPolicy]


def test_safety_defaults() -> None:
    restore = node_at("LazarusRestoreTest", "spec.restore")["properties"]
    assert restore["includeClusterResources"]["default"] is False
    assert restore["restorePVs"]["default"] is True
    cleanup = node_at("LazarusRestoreTest", "spec.cleanup")["properties"]
    assert {k: v["default"] for k, v in cleanup.items()} == {
        "enabled": True, "deleteNamespace": True, "deleteSecrets": True, "keepOnFailure": False}
    source = node_at("LazarusRestoreTest",
                     "spec.healthChecks.database.connectionString.secretRef.source")
    assert source["enum"] == ["Sandbox", "TestNamespace"] and source["default"] == "Sandbox"


# --------------------------------------------------------------------------- samples

SAMPLE_FILES = sorted(SAMPLES.glob("*.yaml"))


def test_all_samples_are_present() -> None:
    assert [p.name for p in SAMPLE_FILES] == [
        "backuptestpolicy.yaml", "restoretest-minimal.yaml", "restoretest-postgres.yaml"]


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_sample_is_valid(path: Path) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert document["metadata"]["namespace"] == "lazarus-system"
    assert validate_object(document) == []


def _postgres_sample() -> Schema:
    document: Schema = yaml.safe_load((SAMPLES / "restoretest-postgres.yaml").read_text())
    return document


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["healthChecks"]["database"].update(type="oracle"), "is not one of"),
        (lambda s: s["healthChecks"]["database"].update(typo=True), "unknown field"),
        (lambda s: s.pop("backupName"), "spec.backupName: required"),
        (lambda s: s.update(ttl="1 day"), "does not match"),
        (lambda s: s["healthChecks"]["http"]["endpoints"][0].update(expectedStatus=700),
         "greater than"),
        (lambda s: s["healthChecks"]["http"]["endpoints"].append({"name": "api-health",
                                                                 "url": "http://x"}),
         "duplicate keys"),
        (lambda s: s["workloads"].update(waitFor=["Pods"]), "is not one of"),
        (lambda s: s["healthChecks"]["customChecks"]["pod"]["resources"]["limits"].update(
            cpu="lots"), "does not match"),
    ],
    ids=["enum", "unknown-field", "required", "pattern", "maximum", "map-list", "set", "quantity"],
)
def test_malformed_sample_is_rejected(change: Any, expected: str) -> None:
    document = _postgres_sample()
    change(document["spec"])
    errors = validate_object(document)
    assert errors and any(expected in error for error in errors), errors


def test_misspelled_kind_is_rejected() -> None:
    document = _postgres_sample()
    document["kind"] = "LaziusRestoreTest"
    assert validate_object(document)
