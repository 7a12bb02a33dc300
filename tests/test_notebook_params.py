from pathlib import Path

import pytest

from normtest_lib.errors import ConfigError
from normtest_lib.notebook_params import ParameterGuard, resolve_data_roots

DECLARED = {"datasets": list, "max_images": (type(None), int)}


def notebook_namespace() -> dict:
    """A namespace as a kernel has it after the imports cell."""
    import math

    return {"In": [], "Out": {}, "math": math, "_i1": "import math"}


def test_declared_parameters_and_their_overrides_pass():
    namespace = notebook_namespace()
    guard = ParameterGuard(namespace)
    namespace.update(guard=guard, datasets=["synthetic"], max_images=None)  # parameters cell
    namespace.update(max_images=100, _i2="max_images = 100", _2=None)  # papermill's injected cell, IPython's history
    assert guard.check(namespace, DECLARED) == {"datasets": ["synthetic"], "max_images": 100}


def test_an_unknown_injected_parameter_is_rejected_by_name():
    namespace = notebook_namespace()
    guard = ParameterGuard(namespace)
    namespace.update(datasets=["synthetic"], max_images=None)
    namespace["max_imgaes"] = 100  # a typo papermill would only warn about
    with pytest.raises(ConfigError, match="unknown notebook parameter.*max_imgaes.*accepts: datasets, max_images"):
        guard.check(namespace, DECLARED)


def test_an_injected_parameter_that_rebinds_an_imported_name_is_rejected():
    namespace = notebook_namespace()
    guard = ParameterGuard(namespace)
    namespace.update(datasets=["synthetic"], max_images=None, math=3)
    with pytest.raises(ConfigError, match="math"):
        guard.check(namespace, DECLARED)


def test_a_declared_parameter_missing_from_the_parameters_cell_is_reported():
    namespace = notebook_namespace()
    guard = ParameterGuard(namespace)
    namespace.update(datasets=["synthetic"])
    with pytest.raises(ConfigError, match="max_images.*never set"):
        guard.check(namespace, DECLARED)


def test_a_parameter_of_the_wrong_type_is_rejected():
    namespace = notebook_namespace()
    guard = ParameterGuard(namespace)
    namespace.update(datasets="synthetic", max_images=None)
    with pytest.raises(ConfigError, match="datasets must be list, got 'synthetic'"):
        guard.check(namespace, DECLARED)


def test_data_roots_from_none_one_folder_or_a_mapping(tmp_path):
    names = ["synthetic", "cifar10"]
    assert resolve_data_roots(names, None) == {"synthetic": None, "cifar10": None}
    assert resolve_data_roots(names, str(tmp_path)) == {"synthetic": tmp_path, "cifar10": tmp_path}
    assert resolve_data_roots(names, {"cifar10": str(tmp_path)}) == {"synthetic": None, "cifar10": tmp_path}


def test_data_roots_reject_a_mapping_key_that_is_not_a_data_set():
    with pytest.raises(ConfigError, match="cifar100"):
        resolve_data_roots(["cifar10"], {"cifar100": Path("x")})
    with pytest.raises(ConfigError, match="mapping"):
        resolve_data_roots(["cifar10"], 3)
